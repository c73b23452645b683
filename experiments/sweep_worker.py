"""One sweep training in its own process: ``python -m experiments.sweep_worker RUN_DIR``.

Reads RUN_DIR/sweep_spec.json (written by experiments.sweep: the run's trainer overrides, --set
items and torch thread count), holds RUN_DIR/sweep.lock while it trains (so two sweeps never
train the same run at once; the lock is released when the process ends, however it ends) and
exits when its parent sweep process goes away (checked every second), so killing the sweep
leaves no training behind. Exit status: 0 done, 3 the run is locked by another process,
1 training failed (traceback on stderr).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

SPEC = "sweep_spec.json"
EXIT_LOCKED = 3


def _exit_with_parent(parent: int) -> None:
    """Daemon thread: end this process (status 1) once its parent has gone."""
    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m experiments.sweep_worker RUN_DIR", file=sys.stderr)
        return 2
    _exit_with_parent(os.getppid())
    run_dir = Path(argv[0])
    spec = json.loads((run_dir / SPEC).read_text())
    from experiments.sweep import RunLocked, train_one

    import torch
    torch.set_num_threads(max(1, int(spec["threads"])))
    try:
        train_one(spec, str(run_dir))
    except RunLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_LOCKED
    return 0


if __name__ == "__main__":
    sys.exit(main())
