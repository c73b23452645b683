"""Training speed and peak memory of every delay method against dense ``dcls`` of the same shape.

Reference shape: 100 steps per sample, 40 -> 256 -> 10, K = 25 (delays 0..24 steps). Grid
(defaults): each method at sparsity 0, 0.5, 0.9 and 0.97, plus structure-multi at the synapse
count of structure at 0.9 (sparsity 1 - 0.1/K), at batch 256 and at the default batch
(trainer/defaults.toml); the baseline, dense dcls (sparsity 0), is measured in the same run at
each batch size. Each configuration runs in its own subprocess (so peak memory is its own): a
few warm-up steps, then timed full training steps (forward with training kernels, backward,
Adam, DEEP R + RigL rewiring on the default schedule, so 1 in rewire_interval steps computes
the dense candidate gradient) through trainer.train.optimisation_step. Each configuration runs
--repeats times (rounds interleaved) and the fastest round counts, as the machine may be
shared. Peak memory: CUDA max allocated; CPU peak RSS of the subprocess minus its RSS after
imports. The thread count is set explicitly (--threads, default 1: on a busy CPU OpenMP
oversubscription makes multi-threaded timings meaningless).

    python bench/train_speed.py [--json OUT.json] [--steps 10] [--device cpu|cuda]
        [--batches 256 32] [--sparsities 0 0.5 0.9 0.97] [--methods ...] [--threads 1]

--json writes {"baseline": {batch: {...}}, "runs": [{"method", "sparsity", "batch_size",
"samples_per_s", "ratio_to_dense_dcls", "peak_rss_mb", "connections", "sparse_path"}], "setup"}.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
METHODS = ["dcls", "structure", "structure-multi", "no-delay"]


def _rss_bytes() -> int:
    """Current resident set size of this process (bytes, Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(kind: str, sparsity: float, steps: int, batch: int, device: str) -> dict:
    import torch
    from trainer.config import resolve_config
    from trainer.model import DelaySNN
    from trainer.train import RewireSchedule, optimisation_step
    torch.set_flush_denormal(True)
    dev = torch.device(device)
    base_rss = _rss_bytes()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 100, 40, generator=g) * 0.08).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    cfg = resolve_config(overrides={"method": kind, "sparsity": sparsity, "dropout": 0.0})
    model = DelaySNN(40, 10, cfg).to(dev)
    model.set_sigma(1.0)
    pos = [c.dcls.P for c in model.connections if c.method == "dcls"]
    w = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in pos)]
    opt_w = torch.optim.Adam(w, lr=1e-3)
    opt_p = torch.optim.Adam(pos, lr=0.1) if pos else None
    sparse = [c for c in model.connections if c.sparse]
    warm = 2
    schedule = RewireSchedule.from_config(cfg, total_steps=10 ** 6)
    counter = iter(range(10 ** 6))

    def step():
        optimisation_step(model, model, x, y, None, 1.0 / batch, 0.0, opt_w, opt_p, sparse, [],
                          schedule=schedule, step=next(counter))
    for _ in range(warm):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    sec = time.perf_counter() - t0
    return {"method": kind, "sparsity": sparsity, "batch_size": batch,
            "samples_per_s": steps * batch / sec, "peak_bytes": int(peak),
            "connections": model.connection_counts(),
            "sparse_path": [bool(c.sparse_path) for c in model.connections]}


def grid(methods, sparsities, batches, K: int = 25) -> list[tuple[str, float, int]]:
    """(method, sparsity, batch) configurations; the dense dcls baseline first at each batch."""
    runs = [("dcls", 0.0, b) for b in batches]
    for b in batches:
        for m in methods:
            for s in sparsities:
                if (m, float(s), b) not in runs:
                    runs.append((m, float(s), b))
            if m == "structure-multi" and "structure" in methods and 0.9 in sparsities:
                runs.append((m, round(1 - 0.1 / K, 6), b))   # structure's synapses at 0.9
    return runs


def run_grid(runs, steps: int, device: str, threads: int, repeats: int) -> dict:
    """Measure every configuration in a subprocess, ``repeats`` interleaved rounds, best kept;
    returns the --json document."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    best: dict = {}
    for rnd in range(repeats):
        for m, s, b in runs:
            out = subprocess.run([sys.executable, __file__, "--child", f"{m}:{s}:{b}", "--steps",
                                  str(steps), "--device", device, "--threads", str(threads)],
                                 capture_output=True, text=True, env=env, cwd=REPO)
            if out.returncode != 0:
                raise RuntimeError(f"{m} sparsity {s} batch {b} failed:\n{out.stderr[-2000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  round {rnd + 1}: {m:16s} S={s:<6} B={b:<4} {r['samples_per_s']:8.1f} "
                  f"samples/s", file=sys.stderr)
            old = best.get((m, s, b))
            if old is None or r["samples_per_s"] > old["samples_per_s"]:
                best[(m, s, b)] = {**r, "peak_bytes": max(r["peak_bytes"], old["peak_bytes"])
                                   if old else r["peak_bytes"]}
    base = {b: best[(m, s, b)] for m, s, b in runs if m == "dcls" and s == 0.0}
    rows = []
    for m, s, b in runs:
        r = best[(m, s, b)]
        rows.append({"method": m, "sparsity": s, "batch_size": b,
                     "samples_per_s": round(r["samples_per_s"], 2),
                     "ratio_to_dense_dcls": round(r["samples_per_s"]
                                                  / base[b]["samples_per_s"], 3),
                     "peak_rss_mb": round(r["peak_bytes"] / 2 ** 20, 1),
                     "peak_ratio_to_dense_dcls": round(r["peak_bytes"]
                                                       / max(1, base[b]["peak_bytes"]), 3),
                     "connections": r["connections"], "sparse_path": r["sparse_path"]})
    return {"baseline": {str(b): {"method": "dcls", "sparsity": 0.0, "batch_size": b,
                                  "samples_per_s": round(v["samples_per_s"], 2),
                                  "peak_rss_mb": round(v["peak_bytes"] / 2 ** 20, 1)}
                         for b, v in base.items()},
            "runs": rows,
            "setup": {"shape": "40 -> 256 -> 10", "time_steps": 100, "kernel_size": 25,
                      "device": device, "threads": threads, "timed_steps": steps,
                      "repeats": repeats, "peak_memory": "CUDA max allocated; CPU peak RSS "
                      "of the subprocess minus its RSS after imports"}}


def main(argv=None) -> int:
    from trainer.config import load_defaults
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    p.add_argument("--batches", type=int, nargs="+",
                   default=sorted({256, int(load_defaults()["batch_size"])}, reverse=True))
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.9, 0.97])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--repeats", type=int, default=2,
                   help="rounds over all configurations; the best round counts (busy machines)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.threads < 1 or a.steps < 1 or a.repeats < 1:
        p.error("--threads, --steps and --repeats must be >= 1")
    if any(not 0 <= s < 1 for s in a.sparsities) or any(b < 1 for b in a.batches):
        p.error("sparsities must be in [0, 1) and batches >= 1")
    if a.json and not Path(a.json).parent.is_dir():
        p.error(f"--json: folder {Path(a.json).parent} does not exist")
    if a.child:
        import torch
        torch.set_num_threads(a.threads)
        kind, s, b = a.child.split(":")
        print(json.dumps(measure(kind, float(s), a.steps, int(b), a.device)))
        return 0
    doc = run_grid(grid(a.methods, a.sparsities, a.batches), a.steps, a.device, a.threads,
                   a.repeats)
    print(f"training speed, 100 steps, 40 -> 256 -> 10, K = 25, device {a.device}, threads "
          f"{a.threads}, {a.steps} timed steps each; ratios to dense dcls at the same batch")
    print(f"{'method':16s} {'sparsity':>8s} {'batch':>5s} {'samples/s':>10s} {'x dcls':>7s} "
          f"{'peak MiB':>9s} {'x dcls':>7s}")
    for r in doc["runs"]:
        print(f"{r['method']:16s} {r['sparsity']:8.4g} {r['batch_size']:5d} "
              f"{r['samples_per_s']:10.1f} {r['ratio_to_dense_dcls']:7.2f} "
              f"{r['peak_rss_mb']:9.0f} {r['peak_ratio_to_dense_dcls']:7.2f}")
    if a.json:
        from trainer.file_io import write_json_atomic
        write_json_atomic(doc, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
