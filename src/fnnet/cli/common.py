"""What several commands read from their parsed arguments: the lessons named, the sizes typed, a usage error.

Examples:
  >>> lesson_ids("sine")[-1], lesson_ids("nn")
  ('sine_control_flow', ['nn'])
"""

from __future__ import annotations

from fnnet.errors import ConfigError
from fnnet.lessons import EDITIONS, LESSONS, edition_ids, get_lesson


def lesson_ids(choice: str) -> list[str]:
    """The lessons a LESSON|classic|sine|all argument names (a ConfigError for an unknown one).

    Examples:
      >>> len(lesson_ids("all")), lesson_ids("classic")[0]
      (16, 'numpy')
    """
    if choice in (*EDITIONS, "all"):
        return edition_ids(choice)
    return [get_lesson(choice).id]


def is_sine(lesson_id: str) -> bool:
    """The lesson belongs to the sine edition (it fits sin(x) on its own data).

    Examples:
      >>> is_sine("sine_nn"), is_sine("nn")
      (True, False)
    """
    return LESSONS[lesson_id].edition == "sine"


def given_sizes(args) -> dict:
    """The sizes the user typed (a dict of the flags given); fit fills the rest from the data or the defaults.

    Examples:
      >>> import argparse
      >>> given_sizes(argparse.Namespace(batch=8, d_in=None, hidden=4, d_out=None))
      {'batch': 8, 'hidden': 4}
    """
    given = {"batch": args.batch, "d_in": args.d_in, "hidden": args.hidden, "d_out": args.d_out}
    return {k: v for k, v in given.items() if v is not None}


def usage(message: str) -> ConfigError:
    """The error of a command line that cannot run: one line on stderr, exit status 2 (``fnnet.cli.main``)."""
    return ConfigError(message)
