"""What went wrong, in one line: the system error behind a failed write, and any error's first line.

Storage fails in two shapes here: Python's ``OSError`` (a lock file, a
manifest) and tensorstore's errors, which orbax passes on with the errno only
in their text (``os_error_code=28``). ``storage_reason`` reads both.
"""

from __future__ import annotations

import os
import re

_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")  # how tensorstore reports the errno in its messages


def storage_reason(err: BaseException | None) -> str | None:
    """The strerror of the system error behind ``err`` (an OSError, or tensorstore's text), or None.

    The chain of causes is followed, since orbax wraps tensorstore's error.

    Examples:
      >>> import errno
      >>> storage_reason(OSError(errno.ENOSPC, "No space left on device"))
      'No space left on device'
      >>> storage_reason(ValueError("os_error_code=30 [source location...]"))
      'Read-only file system'
      >>> storage_reason(ValueError("bad shape")) is None
      True
    """
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, OSError) and err.errno is not None:
            return os.strerror(err.errno)
        code = _OS_ERROR_CODE.search(str(err))
        if code:
            return os.strerror(int(code.group(1)))
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def first_line(err: BaseException) -> str:
    """The first line of an error's text (at most 160 characters), or its type's name when it has none.

    Examples:
      >>> first_line(ValueError("3 file(s) changed\\nmore detail")), first_line(KeyError())
      ('3 file(s) changed', 'KeyError')
    """
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__
