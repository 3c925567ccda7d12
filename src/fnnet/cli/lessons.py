"""``fnnet lessons``: the table of lessons, one row per record of ``fnnet.lessons.LESSONS``."""

from __future__ import annotations

HEADERS = ["lesson", "edition", "model", "gradient", "runs in", "optimizer", "lr", "steps", "what it adds"]


def rows() -> list[list[str]]:
    """One row per lesson, in tutorial order.

    Examples:
      >>> rows()[5][:7]
      ['optim', 'classic', 'nnx.Sequential', 'jax.grad', 'jax', 'adam', '0.0001']
    """
    from fnnet.lessons import LESSONS

    return [[l.id, l.edition, l.model, l.gradient, l.backend, l.optimizer, f"{l.lr:g}", str(l.steps), l.idea]
            for l in LESSONS.values()]


def run(args) -> int:
    """Print the table of lessons; exit status 0."""
    del args
    from fnnet.cli.report import format_table

    print(format_table(HEADERS, rows()))
    return 0
