"""Run one Lava job in a child process that can always be stopped and cleaned up.

The child (`python -m lava_runtime.lava_graph.worker JOB_DIR`) runs in its own session, so it and
every Lava worker it forks form one process group. Its temporary files (multiprocessing's
pymp-* socket folders) go to JOB_DIR/tmp, and its shared-memory segments get the name prefix
`/dev/shm/<prefix>...`. Whatever happens (success, error, timeout, KeyboardInterrupt), the
parent then kills whatever is left of the group, unlinks the segments with that prefix and
removes JOB_DIR: no worker process or shared-memory file survives a run.

This module does not import Lava.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
SHM_PREFIX_ENV = "DELAYSNN_SHM_PREFIX"
WORKER_MODULE = "lava_runtime.lava_graph.worker"  # run as `python -m WORKER_MODULE JOB_DIR`
_REPO_ROOT = Path(__file__).resolve().parents[2]


class LavaRunError(RuntimeError):
    """A Lava run failed; `log_tail` holds the end of the worker's output."""

    def __init__(self, message: str, log_tail: str = "", pid: int | None = None):
        super().__init__(message + (f"\n--- worker output (tail) ---\n{log_tail}"
                                    if log_tail else ""))
        self.log_tail = log_tail
        self.pid = pid


class LavaTimeoutError(LavaRunError, TimeoutError):
    """A Lava run did not finish within its timeout and was killed."""


def new_shm_prefix() -> str:
    return f"dsnn{os.getpid()}x{secrets.token_hex(3)}_"


def group_members(pgid: int) -> list[int]:
    """PIDs of live processes in process group `pgid` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields: state ppid pgrp ...; zombies (Z) are dead already
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry))
    return out


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group `pgid` (our child's own group) until none is left."""
    for _ in range(50):
        if not group_members(pgid):
            return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def remove_shm(prefix: str) -> list[str]:
    """Unlink /dev/shm entries whose name starts with `prefix`; returns their names."""
    removed: list[str] = []
    if not prefix or not SHM_DIR.is_dir():
        return removed
    for p in SHM_DIR.iterdir():
        if p.name.startswith(prefix):
            try:
                p.unlink()
                removed.append(p.name)
            except FileNotFoundError:
                pass
    return removed


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def run_job(job_dir: Path, timeout_s: float, progress_total: int | None = None,
            desc: str = "lava", unit: str = "sample", worker: str | None = None) -> dict:
    """Run the worker on `job_dir` (which holds job.pkl); return its done.json.
    progress_total: show a progress bar of that many `unit`s (the worker writes the count
    done to job_dir/progress). worker: the module run as `python -m WORKER JOB_DIR` (default
    WORKER_MODULE).

    Raises LavaTimeoutError after `timeout_s` seconds, LavaRunError if the worker fails.
    Always kills the worker's process group and removes its shared memory; the caller removes
    job_dir.
    """
    job_dir = Path(job_dir)
    tmp = job_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    prefix = new_shm_prefix()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED="1", **{SHM_PREFIX_ENV: prefix})
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    log_path = job_dir / "worker.log"
    bar = None
    if progress_total:
        from delaysnn.terminal import progress_bar
        bar = progress_bar(total=progress_total, desc=desc, unit=unit)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", worker or WORKER_MODULE, str(job_dir)],
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=str(job_dir))
    pid = proc.pid
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if bar is not None:
                _update_bar(bar, job_dir / "progress")
            if time.monotonic() > deadline:
                raise LavaTimeoutError(
                    f"Lava run exceeded its timeout of {timeout_s:.0f} s and was killed "
                    f"(raise timeout_s if the run is just long)", _tail(log_path), pid)
        if bar is not None:
            _update_bar(bar, job_dir / "progress")
        done = job_dir / "done.json"
        if proc.returncode != 0 or not done.exists():
            err = job_dir / "error.txt"
            msg = err.read_text(errors="replace").strip() if err.exists() else ""
            raise LavaRunError(f"Lava run failed (worker exit code {proc.returncode})"
                               + (f": {msg}" if msg else ""), _tail(log_path), pid)
        return json.loads(done.read_text())
    finally:
        if bar is not None:
            bar.close()
        kill_group(pid)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        remove_shm(prefix)


def _update_bar(bar, path: Path) -> None:
    try:
        n = int(path.read_text() or 0)
    except (OSError, ValueError):
        return
    if n > bar.n:
        bar.update(n - bar.n)


def cleanup_job_dir(job_dir: Path) -> None:
    shutil.rmtree(job_dir, ignore_errors=True)
