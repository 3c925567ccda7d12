"""Timing two codings of a lesson, apart from judging them (``fnnet.parity.engine``).

PyTorch's thread count is chosen first as the faster of a few on short runs
(oversubscribed torch threads on a busy machine can be 100x slower, so the long
runs are spent only on the winner); then each round runs both sides once,
alternating which goes first, and a side's time is the median of its rounds.
"""

from __future__ import annotations

import statistics
from typing import Callable, NamedTuple


class Timing(NamedTuple):
    """Seconds of each timed round, per side, and the threads the reference ran with."""

    torch_seconds: float  # the median of torch_runs
    jax_seconds: float
    torch_threads: int
    torch_runs: tuple
    jax_runs: tuple
    torch_threads_tried: dict  # threads -> seconds of the short runs, the warm-up round left out


def fastest_threads(run_ref: Callable[[int], float], candidates, rounds: int = 3) -> tuple[int, dict]:
    """The thread count whose short reference runs (``run_ref(threads) -> seconds``) have the lowest median.

    The rounds alternate the order of the candidates; the first round warms up and is not counted.

    Examples:
      >>> fastest_threads(lambda k: {1: 0.5, 4: 0.2}[k], [1, 4])
      (4, {1: (0.5, 0.5), 4: (0.2, 0.2)})
    """
    tried = {k: [] for k in sorted(set(candidates))}
    for r in range(rounds):
        for k in (list(tried) if r % 2 else list(tried)[::-1]):
            tried[k].append(run_ref(k))
    best = min(tried, key=lambda k: statistics.median(tried[k][1:]))
    return best, {k: tuple(v[1:]) for k, v in tried.items()}


def interleaved(run_ref: Callable[[], float], run_ours: Callable[[], float], rounds: int) -> tuple[list, list]:
    """Seconds of ``rounds`` runs of each side, one of each per round, alternating which goes first.

    Examples:
      >>> order = []
      >>> interleaved(lambda: order.append("t") or 1.0, lambda: order.append("j") or 2.0, 2), order
      (([1.0, 1.0], [2.0, 2.0]), ['t', 'j', 'j', 't'])
    """
    ref_runs, our_runs = [], []
    for r in range(rounds):
        pair = [lambda: ref_runs.append(run_ref()), lambda: our_runs.append(run_ours())]
        for run in pair if r % 2 == 0 else pair[::-1]:
            run()
    return ref_runs, our_runs


def time_pair(run_ref: Callable[[int, int | None], float], run_ours: Callable[[int], float], *, rounds: int,
              cores: int, short: int) -> Timing:
    """Choose the reference's threads (1 or ``cores``, on runs of ``short`` steps), then time ``rounds`` rounds.

    ``run_ref(threads, steps)`` (steps None: the full run) and ``run_ours(threads)`` each return the seconds
    of one run.

    Examples:
      >>> t = time_pair(lambda k, n: 0.1 * k, lambda k: 0.3, rounds=3, cores=2, short=5)
      >>> t.torch_threads, t.torch_seconds, t.jax_seconds, len(t.jax_runs)
      (1, 0.1, 0.3, 3)
    """
    best, tried = fastest_threads(lambda k: run_ref(k, short), {1, cores})
    ref_runs, our_runs = interleaved(lambda: run_ref(best, None), lambda: run_ours(best), rounds)
    return Timing(statistics.median(ref_runs), statistics.median(our_runs), best, tuple(ref_runs), tuple(our_runs),
                  tried)
