"""Collection rules for the doctests in src/fnnet.

The PyTorch modules need torch. Without it (a user who did not install the
``compare`` extra) their doctests are not collected; under CI (``CI`` set) they
always are, so a missing torch fails the run instead of passing it quietly.
"""

import importlib.util
import os

collect_ignore = []
if importlib.util.find_spec("torch") is None and not os.environ.get("CI"):
    collect_ignore += ["src/fnnet/parity"]
