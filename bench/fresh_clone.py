"""Time the README's test command (`CI=true bash .ci/run`, i.e. `make test`) in a fresh clone.

Usage: python bench/fresh_clone.py [--runs N] [--out docs/results/fresh_clone_make_test.json]
Clones the committed HEAD of this repository into a temporary folder, links the data folder
(../shared) beside it as CI has it, and runs `.ci/run` N times in a row (default 2: the first
installs everything, the second takes the "already installed" path) with empty caches (the
project's $DELAYSNN_CACHE, holding the patched wheels and FSDD features, and pip's cache via
$XDG_CACHE_HOME), so the first run pays every download and build a new machine pays. Each run is
split at the line `make test` prints before pytest starts: install_s before it (venv, torch,
patched wheels, pip, Chromium), test_s after it. Writes the figures (s) and the machine's core
count and load to the JSON file.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainer.file_io import write_json_atomic  # noqa: E402

TEST_START = "make: running the test suite"
DEFAULT_OUT = REPO / "docs" / "results" / "fresh_clone_make_test.json"


def time_run(clone: Path, env: dict, log: Path) -> dict:
    """One `bash .ci/run` in ``clone``: {"install_s", "test_s", "total_s", "rc", "summary",
    "steps"}; steps: each `make: ...` progress line with the seconds until the next one."""
    t0 = time.perf_counter()
    t_test = None
    summary = ""
    marks = []
    with open(log, "w") as f:
        proc = subprocess.Popen(["bash", ".ci/run"], cwd=clone, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in proc.stdout:
            now = time.perf_counter()
            f.write(f"{now - t0:8.1f} {line}")
            if line.startswith("make: "):
                marks.append((line.strip(), now))
            if line.startswith(TEST_START):
                t_test = now
            if re.search(r"\d+ (passed|failed)", line):
                summary = line.strip().strip("= ")
        rc = proc.wait()
    t1 = time.perf_counter()
    ends = [t for _, t in marks[1:]] + [t1]
    steps = [{"step": text, "s": round(end - t, 1)} for (text, t), end in zip(marks, ends)]
    if t_test is None:
        return {"rc": rc, "install_s": None, "test_s": None, "total_s": t1 - t0, "steps": steps,
                "summary": f"no '{TEST_START}' line: the install failed (see the log)"}
    return {"rc": rc, "install_s": t_test - t0, "test_s": t1 - t_test, "total_s": t1 - t0,
            "steps": steps, "summary": summary}


def measure(runs: int = 2, shared: Path | None = None, keep: bool = False) -> dict:
    """Clone HEAD into a temporary folder and time ``runs`` consecutive `.ci/run` (s)."""
    shared = (shared or REPO.parent / "shared").resolve()
    if not (shared / "data").is_dir():
        raise SystemExit(f"fresh_clone: no data folder at {shared}/data; pass --shared")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="delaysnn-fresh-clone-"))
    try:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(work / "repo")], check=True)
        (work / "shared").symlink_to(shared)
        env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "DELAYSNN_CACHE": str(work / "cache"), "XDG_CACHE_HOME": str(work / "xdg-cache")}
        result = {"command": "CI=true bash .ci/run (make test) in a fresh clone",
                  "commit": commit,
                  "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "cpu_count": os.cpu_count(), "load_avg_1min_before": os.getloadavg()[0],
                  "fresh_caches": ["DELAYSNN_CACHE", "XDG_CACHE_HOME (pip)"],
                  "threads": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1}, "runs": []}
        for i in range(runs):
            r = time_run(work / "repo", env, work / f"run{i + 1}.log")
            for step in r["steps"]:   # no machine paths in the results
                step["step"] = step["step"].replace(str(work), "<tmp>")
            r["load_avg_1min_after"] = os.getloadavg()[0]
            result["runs"].append(r)
            print(f"run {i + 1}: rc {r['rc']}, install {r['install_s'] or 0:.0f} s, "
                  f"tests {r['test_s'] or 0:.0f} s, total {r['total_s']:.0f} s: {r['summary']}",
                  flush=True)
            if r["rc"] != 0:
                keep = True
                print(f"fresh_clone: run {i + 1} failed; log kept in {work}/run{i + 1}.log")
                break
        return result
    finally:
        if keep:
            print(f"fresh_clone: clone kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="consecutive runs of .ci/run (default 2)")
    ap.add_argument("--shared", type=Path, default=None,
                    help="folder holding data/ (default: ../shared beside this repository)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file written")
    ap.add_argument("--keep", action="store_true", help="keep the clone and logs")
    args = ap.parse_args(argv)
    if args.runs < 1:
        raise SystemExit(f"fresh_clone: --runs must be >= 1, got {args.runs}")
    result = measure(args.runs, args.shared, args.keep)
    write_json_atomic(result, args.out)
    print(f"wrote {args.out}")
    return 0 if all(r["rc"] == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
