"""Progress bars that leave the terminal and logs readable (standard library and tqdm only).

`progress_bar` flushes stdout first, so a label printed just before it appears before the bar
also when stdout is a pipe (block-buffered) and the bar goes to unbuffered stderr. On a
terminal the bar is cleared when done; elsewhere (a log, a pipe, captured output) it stays as
its last state followed by a newline, because there the spaces and carriage returns that clear
it would run into the next message.
"""
from __future__ import annotations

import sys
from typing import Any


def progress_bar(iterable: Any = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False):
    """A tqdm bar on stderr (see the module docstring); `disable` hides it."""
    from tqdm import tqdm

    sys.stdout.flush()
    on_terminal = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=not on_terminal,
                disable=disable, file=sys.stderr)
