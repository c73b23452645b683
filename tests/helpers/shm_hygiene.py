"""Shared-memory leak checks that hold on a machine running other jobs.

/dev/shm is machine-wide: while a test runs, another test run (another clone, another CI job)
may be in the middle of its own Lava run. A segment counts as leaked by this test only if it
appeared during the test and no live process outside this process's tree owns it: not named
for such a process by the sandbox (`dsnn<pid>x...`, lava_runtime/lava_graph/sandbox.py), not mapped by one,
and not another user's file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

SHM = Path("/dev/shm")
_SANDBOX_NAME = re.compile(r"dsnn(\d+)x")


def shm_entries() -> set[str]:
    return {p.name for p in SHM.iterdir()} if SHM.is_dir() else set()


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _ours(pid: int) -> bool:
    """pid is this process or one of its descendants."""
    me, seen = os.getpid(), set()
    while pid and pid not in seen:
        if pid == me:
            return True
        seen.add(pid)
        pid = _parent(pid)
    return False


def _foreign_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and not _ours(int(e))]


def _mapped_by(pids: list[int], names: set[str]) -> set[str]:
    found = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        found |= {n for n in names if f"/dev/shm/{n}" in maps}
    return found


def leaked_shm(before: set[str], only_prefix: str = "") -> set[str]:
    """Entries (starting with ``only_prefix``) that are new since ``before`` and not another
    live job's."""
    new = {n for n in shm_entries() - before if n.startswith(only_prefix)}
    if not new:
        return new
    foreign = _foreign_pids()
    live = set(foreign)
    other = set()
    for n in new:
        m = _SANDBOX_NAME.match(n)
        if m and int(m.group(1)) in live:
            other.add(n)
        else:
            try:
                if (SHM / n).stat().st_uid != os.getuid():
                    other.add(n)
            except FileNotFoundError:
                other.add(n)  # gone already: its owner removed it
    return new - other - _mapped_by(foreign, new - other)
