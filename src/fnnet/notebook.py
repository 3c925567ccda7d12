"""Small display helpers for the notebooks: code side by side, both loss curves, the parity numbers.

Nothing here computes anything new; it shows what ``fnnet.compare`` measured.
"""

from __future__ import annotations

import html
import inspect
import textwrap


def _source(obj) -> str:
    return obj if isinstance(obj, str) else textwrap.dedent(inspect.getsource(obj))


class SideBySide:
    """Two pieces of code in two columns (HTML in a notebook, one after the other as text)."""

    def __init__(self, left, right, left_title: str, right_title: str):
        self.left, self.right = _source(left), _source(right)
        self.titles = left_title, right_title

    def _repr_html_(self) -> str:
        cell = ('<td style="vertical-align:top;text-align:left;width:50%"><b>{}</b>'
                '<pre style="font-size:11px;white-space:pre-wrap">{}</pre></td>')
        return ("<table><tr>" + cell.format(html.escape(self.titles[0]), html.escape(self.left))
                + cell.format(html.escape(self.titles[1]), html.escape(self.right)) + "</tr></table>")

    def __repr__(self) -> str:
        return f"# {self.titles[0]}\n{self.left}\n# {self.titles[1]}\n{self.right}"


def side_by_side(left, right, left_title: str = "PyTorch (the tutorial)", right_title: str = "JAX (fnnet)"):
    """Show two functions' (or code strings') source next to each other.

    Examples:
      >>> print(repr(side_by_side("a = 1", "b = 2", "left", "right")))
      # left
      a = 1
      # right
      b = 2
    """
    return SideBySide(left, right, left_title, right_title)


def plot_pair(comparison, ax=None, title: str | None = None):
    """Both loss curves of a ``fnnet.compare.Comparison`` on a log scale; returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    ax.plot(comparison.torch_losses, color="#ee4c2c", linewidth=3, alpha=0.55, label="PyTorch")
    ax.plot(comparison.jax_losses, color="#1f4e9c", linewidth=1.2, linestyle="--", label="JAX (fnnet)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or f"{comparison.lesson}: the same start, both frameworks")
    return ax.figure


def parity_lines(comparison) -> str:
    """The parity numbers of a comparison as a few aligned lines.

    Examples:
      >>> import numpy as np
      >>> from fnnet.compare import Comparison
      >>> from fnnet.data import Sizes
      >>> c = Comparison("nn", 2, 0, Sizes(), np.array([4.0, 2.0]), np.array([4.0, 2.0]), {"w": np.ones(2)},
      ...                {"w": np.ones(2)}, 0.002, 0.001, 0.1, 2)
      >>> print(parity_lines(c))
      first loss     torch 4             jax 4
      last loss      torch 2             jax 2
      worst relative loss difference  0.0e+00   (tolerance 1e-03)
      step-0 gradient difference      0.0e+00   (tolerance 1e-05)
      ms/step        torch 1.000         jax 0.500   (jax compile 0.10 s, not included)
    """
    from fnnet.compare import TOLERANCES

    grad_tol, loss_tol = TOLERANCES[comparison.dtype]
    t, j = comparison.torch_losses, comparison.jax_losses
    return "\n".join([
        f"first loss     torch {t[0]:<12.6g}  jax {j[0]:.6g}",
        f"last loss      torch {t[-1]:<12.6g}  jax {j[-1]:.6g}",
        f"worst relative loss difference  {comparison.loss_diff:.1e}   (tolerance {loss_tol:.0e})",
        f"step-0 gradient difference      {comparison.grad_diff:.1e}   (tolerance {grad_tol:.0e})",
        f"ms/step        torch {1e3 * comparison.torch_seconds / comparison.steps:<12.3f}  "
        f"jax {1e3 * comparison.jax_seconds / comparison.steps:.3f}   "
        f"(jax compile {comparison.jax_compile_seconds:.2f} s, not included)",
    ])
