"""``python -m fnnet``: the same as the ``fnnet`` command."""

import sys

from fnnet.cli import program

sys.exit(program())
