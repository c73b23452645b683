"""Worker entry point: `python -m lava_runtime.lava_graph.worker JOB_DIR` (sandbox.run_job).

Reads JOB_DIR/job.pkl, builds the Lava graph (graph.build_graph), runs it in chunks (writing the
number of finished samples to JOB_DIR/progress), stops it, and writes JOB_DIR/done.json; on an
error writes JOB_DIR/error.txt and exits 1 without calling stop() (a stop() after a failed run
can hang; the parent kills the process group instead).
"""
from __future__ import annotations

import json
import os
import pickle
import secrets
import sys
import time
import traceback
from pathlib import Path


def _name_shared_memory(prefix: str) -> None:
    """Give every shared-memory segment created from here on (also in forked Lava workers and
    the SharedMemoryManager server) the name /dev/shm/<prefix><random>, so that the parent can
    remove exactly this run's segments if it has to kill the run."""
    from multiprocessing import shared_memory

    if not hasattr(shared_memory, "_make_filename"):
        raise RuntimeError("multiprocessing.shared_memory._make_filename is missing; this "
                           "Python cannot tag shared memory for cleanup")
    shared_memory._make_filename = lambda: "/" + prefix + secrets.token_hex(6)


def _model_errors(head) -> str:
    """The tracebacks of failed ProcessModels (Lava only logs them at INFO level)."""
    try:
        actors = head._runtime._messaging_infrastructure.actors
        tbs = [a.exception[1] for a in actors if a.exception]
    except Exception:  # private Lava API: its absence must not hide the original error
        return ""
    if not tbs:
        return ""
    last = [tb.strip().splitlines()[-1] for tb in tbs]
    return ("process model error: " + "; ".join(last) + "\n\n" + "\n".join(tbs) + "\n")


def main(job_dir: str | Path, build=None) -> int:
    """Run the job in JOB_DIR; `build(job) -> {"head", "n_processes", ...}` makes the graph
    (default lava_runtime.lava_graph.graph.build_graph)."""
    job_dir = Path(job_dir)
    prefix = os.environ.get("DELAYSNN_SHM_PREFIX", "")
    try:
        if prefix:
            _name_shared_memory(prefix)
        with open(job_dir / "job.pkl", "rb") as f:
            job = pickle.load(f)
        from lava.magma.core.run_conditions import RunSteps

        from lava_runtime.lava_graph.graph import build_graph, run_config
        from lava_runtime.lava_graph.lanes import samples_done

        t0 = time.perf_counter()
        graph = (build or build_graph)(job)
        cfg = run_config(job["backend"], job["fast_models"])
        total, chunk = job["total_steps"], job["chunk_steps"]
        window, lanes, n_samples = job["window"], job.get("lanes", 1), job["n_samples"]
        head = graph["head"]
        done_steps = 0
        t_run = time.perf_counter()
        try:
            while done_steps < total:
                # the first run() compiles and starts the workers: time it apart (1 step)
                n = 1 if done_steps == 0 else min(chunk, total - done_steps)
                head.run(condition=RunSteps(num_steps=n), run_cfg=cfg)
                done_steps += n
                if done_steps == 1:
                    t_run = time.perf_counter()
                    startup = t_run - t0
                    # proof for the caller that this run's segments carry the prefix
                    n_shm = sum(1 for e in os.listdir("/dev/shm") if prefix and
                                e.startswith(prefix)) if os.path.isdir("/dev/shm") else 0
                finished = samples_done(done_steps, window, lanes, n_samples)
                (job_dir / "progress").write_text(str(finished))
        except BaseException:
            (job_dir / "error.txt").write_text(_model_errors(head) + traceback.format_exc())
            sys.stdout.flush()
            os._exit(1)
        t_stop = time.perf_counter()
        head.stop()
        result = {"steps": total, "run_seconds": t_stop - t_run, "startup_seconds": startup,
                  "shm_segments": n_shm,
                  "total_seconds": time.perf_counter() - t0,
                  "n_processes": graph["n_processes"]}
        tmp = job_dir / "done.json.tmp"
        tmp.write_text(json.dumps(result))
        os.replace(tmp, job_dir / "done.json")
        return 0
    except BaseException:
        (job_dir / "error.txt").write_text(traceback.format_exc())
        sys.stdout.flush()
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
