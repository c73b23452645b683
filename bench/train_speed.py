"""Training speed and peak memory of every delay method against dense ``dcls`` of the same shape.

Reference shape: 100 steps per sample, 40 -> 256 -> 10, K = 25 (delays 0..24 steps). Grid
(defaults): each method at sparsity 0, 0.5, 0.9 and 0.97, plus structure-multi at the synapse
count of structure at 0.9 (sparsity 1 - 0.1/K), plus dcls at --dcls-sparsities (0.98), plus
dense dcls on the earlier kernel path (dcls_path "dense", the code before issue 27), at batch
256 and at the default batch (trainer/defaults.toml); the baseline, dense dcls (sparsity 0,
the trainer's default dcls_path), is measured in the same run at each batch size. Each
configuration runs in its own subprocess (so peak memory is its own): a few warm-up steps,
then timed full training steps (forward with training kernels, backward, Adam, DEEP R + RigL
rewiring on the default schedule, so 1 in rewire_interval steps computes the dense candidate
gradient) through trainer.train.optimisation_step. A dcls step's cost follows sigma (its
kept taps, trainer.dcls_taps), so every dcls configuration is timed for --steps steps at each
of --schedule-points points of the default sigma schedule (trainer.train.sigma_at at the
midpoints of equal parts of training) and its samples/s is batch / (mean step time over the
points): the average over the whole schedule; the other methods run as many timed steps
(--steps x --schedule-points) at one sigma. Each configuration runs --repeats times (rounds
interleaved) and the fastest round counts, as the machine may be shared; the 1-minute load
average is recorded before and after each measurement. Peak memory: CUDA max allocated; CPU
peak RSS of the subprocess minus its RSS after imports. The thread count is set explicitly
(--threads, default 1: on a busy CPU OpenMP oversubscription makes multi-threaded timings
meaningless).

    python bench/train_speed.py [--json OUT.json] [--steps 5] [--device cpu|cuda]
        [--batches 256 32] [--sparsities 0 0.5 0.9 0.97] [--dcls-sparsities 0.98]
        [--methods ...] [--threads 1] [--repeats 2] [--schedule-points 8] [--no-dense-path]

--json writes {"baseline": {batch: {...}}, "runs": [{"method", "sparsity", "batch_size",
"dcls_path", "lif_kernel" (what the hidden LIFs ran: "cpp" or "torch", trainer.lif_kernel),
"samples_per_s", "ratio_to_dense_dcls", "peak_rss_mb", "connections", "sparse_path", "loadavg",
and for dcls "schedule": [{"fraction", "sigma", "kept_taps", "sparse_path", "samples_per_s"}]}],
"setup"}.

Recurrence (issue 24). --recurrent adds, after every feed-forward configuration on the
default dcls_path, the same method with recurrent hidden layers at the same total synapse
count (config recurrent, recurrent_equal_synapses; recurrent delays 0..K-1, the same sigma
schedule); its rows carry "recurrent": true, "recurrent_connections", "synapses",
"feed_forward_synapses" and "ratio_to_feed_forward" (samples/s over its feed-forward twin's).
--baseline-tree DIR also runs every feed-forward configuration with the code in DIR (another
commit's files: `git worktree add --detach DIR COMMIT`, whose commit setup records as
"baseline_tree_commit", or `git archive COMMIT | tar -x -C DIR`), interleaved, adding
"baseline_tree_samples_per_s" and "ratio_to_baseline_tree": whether a change left
feed-forward training as fast as before. --recurrent-crossover times the recurrent time loop
alone (trainer.recurrent.recurrent_lif, forward + backward, 40 -> 256 hidden, K = 25, batch
32) on its dense and sparse paths at several densities ("recurrent_crossover"): the basis of
trainer.recurrent.RECURRENT_SPARSE_MAX_DENSITY.
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


def schedule_sigmas(points: int, total_steps: int = 1000) -> list[tuple[float, float]]:
    """(fraction of training, sigma) at the midpoints of ``points`` equal parts of training,
    on the trainer's default sigma schedule (trainer.train.sigma_at)."""
    from trainer.config import load_defaults
    from trainer.train import sigma_at
    cfg = load_defaults()
    out = []
    for i in range(points):
        f = (i + 0.5) / points
        out.append((f, sigma_at(round(f * total_steps), total_steps, cfg)))
    return out


def measure(kind: str, sparsity: float, steps: int, batch: int, device: str,
            dcls_path: str | None = None, schedule_points: int = 0,
            recurrent: bool = False) -> dict:
    """Time ``steps`` training steps (after warm-up) of one configuration; dcls with
    ``schedule_points`` > 0: ``steps`` at each point of the sigma schedule, samples/s over
    the mean step time; other methods: ``steps * schedule_points`` steps (as many)."""
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
    rec = {"recurrent": True, "recurrent_equal_synapses": True} if recurrent else {}
    cfg = resolve_config(overrides={"method": kind, "sparsity": sparsity, "dropout": 0.0,
                                    "dcls_path": dcls_path, **rec})
    model = DelaySNN(40, 10, cfg).to(dev)
    points = schedule_sigmas(schedule_points) if kind == "dcls" and schedule_points else \
        [(None, 1.0)]
    if kind != "dcls":
        steps *= max(1, schedule_points)
    pos = model.positions()
    w = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in pos)]
    opt_w = torch.optim.Adam(w, lr=1e-3)
    opt_p = torch.optim.Adam(pos, lr=0.1) if pos else None
    sparse = [c for c in model.synapse_layers() if c.sparse]
    schedule = RewireSchedule.from_config(cfg, total_steps=10 ** 6)
    counter = iter(range(1, 10 ** 6))       # timed steps: 1 in 10 regrows by score
    warm_counter = iter(range(10 ** 5 + 1, 10 ** 6))

    def step(counter):
        optimisation_step(model, model, x, y, None, 1.0 / batch, 0.0, opt_w, opt_p, sparse, [],
                          schedule=schedule, step=next(counter))
    model.set_sigma(points[0][1])
    model.set_recurrent_sigma(points[0][1])
    for _ in range(2):
        step(warm_counter)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    per_point, total = [], 0.0
    for f, sigma in points:
        model.set_sigma(sigma)
        model.set_recurrent_sigma(sigma)
        step(warm_counter)                   # the new sigma's index and path
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step(counter)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        total += sec
        if f is not None:
            per_point.append({"fraction": round(f, 4), "sigma": round(sigma, 4),
                              "kept_taps": [c.dcls_window()[0] if c.dcls_path == "auto"
                                            else c.K for c in model.connections],
                              "sparse_path": [bool(c.sparse_path) for c in model.connections],
                              "samples_per_s": steps * batch / sec})
            if recurrent:
                per_point[-1]["recurrent_sparse_path"] = [bool(r.sparse_path)
                                                          for r in model.recurrent]
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    from trainer.lif_kernel import used
    out = {"method": kind, "sparsity": sparsity, "batch_size": batch,
           "dcls_path": cfg["dcls_path"] if kind == "dcls" else None,
           "lif_kernel": used(cfg["lif_kernel"], dev),
           "samples_per_s": len(points) * steps * batch / total, "peak_bytes": int(peak),
           "connections": model.connection_counts(),
           "sparse_path": [bool(c.sparse_path) for c in model.connections]}
    if recurrent:
        out["recurrent_connections"] = model.recurrent_connection_counts()
        out["recurrent_sparse_path"] = [bool(r.sparse_path) for r in model.recurrent]
    if per_point:
        out["schedule"] = per_point
    return out


def grid(methods, sparsities, batches, K: int = 25, dcls_sparsities=(),
         dense_path: bool = True) -> list[tuple[str, float, int, str | None]]:
    """(method, sparsity, batch, dcls_path) configurations (dcls_path None = the trainer's
    default); the dense dcls baseline first at each batch."""
    runs: list[tuple[str, float, int, str | None]] = [("dcls", 0.0, b, None) for b in batches]
    for b in batches:
        for m in methods:
            extra = list(dcls_sparsities) if m == "dcls" else []
            for s in [*sparsities, *extra]:
                if (m, float(s), b, None) not in runs:
                    runs.append((m, float(s), b, None))
            if m == "structure-multi" and "structure" in methods and 0.9 in sparsities:
                runs.append((m, round(1 - 0.1 / K, 6), b, None))   # structure's synapses at 0.9
        if "dcls" in methods and dense_path:
            runs.append(("dcls", 0.0, b, "dense"))     # the kernel path before issue 27
    return runs


def with_recurrent(runs, recurrent: bool) -> list[tuple[str, float, int, str | None, bool]]:
    """grid's configurations as (..., False), each on the default dcls_path followed
    (``recurrent``) by its recurrent twin (..., True) at the same total synapse count."""
    out = []
    for m, s, b, path in runs:
        out.append((m, s, b, path, False))
        if recurrent and path is None:
            out.append((m, s, b, path, True))
    return out


def recurrent_crossover(densities, hidden: int = 256, K: int = 25, batch: int = 32,
                        T: int = 100, repeats: int = 3) -> dict:
    """ms per forward + backward of trainer.recurrent.recurrent_lif on its dense and sparse
    paths for random (post, pre, delay) synapse sets of each density (synapses / (n n K)), best
    of ``repeats``, and the largest density at which the sparse path was faster."""
    import torch

    from trainer.recurrent import SparseIndex, recurrent_lif
    g = torch.Generator().manual_seed(0)
    n = hidden
    cur = (torch.rand(batch, n, T, generator=g) * 0.6).requires_grad_()
    rows = []
    for dens in densities:
        R = max(1, round(dens * n * n * K))
        nz = torch.randperm(n * n * K, generator=g)[:R]
        post, pre, d = nz // (n * K), nz // K % n, nz % K
        w = (torch.randn(R, generator=g) * 0.3).requires_grad_()
        kern = torch.zeros(n, K * n)
        kern[post, (K - 1 - d) * n + pre] = w.detach()
        kern.requires_grad_()
        idx = SparseIndex(pre, post, d, n, K)
        ms = {}
        for path, weight, index in (("dense", kern, None), ("sparse", w, idx)):
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                recurrent_lif(cur, weight, K, 0.9, 1.0, 5.0, index).sum().backward()
                best = min(best, time.perf_counter() - t0)
            ms[path] = round(1000 * best, 2)
        rows.append({"density": dens, "synapses": R, "dense_ms": ms["dense"],
                     "sparse_ms": ms["sparse"], "loadavg": round(os.getloadavg()[0], 2)})
        print(f"  recurrent loop, density {dens:<6} dense {ms['dense']:8.1f} ms, sparse "
              f"{ms['sparse']:8.1f} ms", file=sys.stderr)
    faster = [r["density"] for r in rows if r["sparse_ms"] < r["dense_ms"]]
    return {"hidden": n, "kernel_size": K, "batch_size": batch, "time_steps": T,
            "repeats": repeats, "rows": rows,
            "sparse_faster_up_to": max(faster) if faster else None}


def _child(tree: Path, m, s, b, path, rec, steps, device, threads, schedule_points) -> dict:
    """One configuration in a subprocess running ``tree``'s copy of this script."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    spec = f"{m}:{s}:{b}:{path or ''}" + (":r" if rec else "")
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, str(tree / "bench" / "train_speed.py"), "--child", spec,
                          "--steps", str(steps), "--device", device, "--threads", str(threads),
                          "--schedule-points", str(schedule_points)],
                         capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode != 0:
        raise RuntimeError(f"{spec} ({tree}) failed:\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["loadavg"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    return r


def run_grid(runs, steps: int, device: str, threads: int, repeats: int,
             schedule_points: int = 8, baseline_tree: Path | None = None) -> dict:
    """Measure every configuration (with_recurrent's tuples) in a subprocess, ``repeats``
    interleaved rounds, best kept; the feed-forward ones also with ``baseline_tree``'s code
    when given; returns the --json document."""
    best: dict = {}
    old_best: dict = {}
    load_start = os.getloadavg()
    for rnd in range(repeats):
        for m, s, b, path, rec in runs:
            key = (m, s, b, path, rec)
            r = _child(REPO, m, s, b, path, rec, steps, device, threads, schedule_points)
            print(f"  round {rnd + 1}: {m:16s} S={s:<6} B={b:<4} {path or '':5s} "
                  f"{'rec' if rec else '':3s} {r['samples_per_s']:8.1f} samples/s (load "
                  f"{r['loadavg'][0]:.1f} -> {r['loadavg'][1]:.1f})", file=sys.stderr)
            old = best.get(key)
            if old is None or r["samples_per_s"] > old["samples_per_s"]:
                best[key] = {**r, "peak_bytes": max(r["peak_bytes"], old["peak_bytes"])
                             if old else r["peak_bytes"]}
            if baseline_tree is not None and not rec:
                r0 = _child(baseline_tree, m, s, b, path, False, steps, device, threads,
                            schedule_points)
                print(f"  round {rnd + 1}: {'':16s} baseline tree {r0['samples_per_s']:8.1f} "
                      "samples/s", file=sys.stderr)
                if key not in old_best or r0["samples_per_s"] > old_best[key]["samples_per_s"]:
                    old_best[key] = r0
    base = {b: best[(m, s, b, path, rec)] for m, s, b, path, rec in runs
            if m == "dcls" and s == 0.0 and path is None and not rec}
    rows = []
    for m, s, b, path, rec in runs:
        r = best[(m, s, b, path, rec)]
        rows.append({"method": m, "sparsity": s, "batch_size": b, "dcls_path": r["dcls_path"],
                     "lif_kernel": r.get("lif_kernel"), "recurrent": rec,
                     "samples_per_s": round(r["samples_per_s"], 2),
                     "ratio_to_dense_dcls": round(r["samples_per_s"]
                                                  / base[b]["samples_per_s"], 3),
                     "peak_rss_mb": round(r["peak_bytes"] / 2 ** 20, 1),
                     "peak_ratio_to_dense_dcls": round(r["peak_bytes"]
                                                       / max(1, base[b]["peak_bytes"]), 3),
                     "connections": r["connections"], "sparse_path": r["sparse_path"],
                     "loadavg": r["loadavg"]})
        if "schedule" in r:
            rows[-1]["schedule"] = [{**p, "samples_per_s": round(p["samples_per_s"], 2)}
                                    for p in r["schedule"]]
        if rec:
            ff = best[(m, s, b, path, False)]
            rows[-1].update({
                "recurrent_connections": r["recurrent_connections"],
                "recurrent_sparse_path": r["recurrent_sparse_path"],
                "synapses": sum(r["connections"]) + sum(r["recurrent_connections"]),
                "feed_forward_synapses": sum(ff["connections"]),
                "ratio_to_feed_forward": round(r["samples_per_s"] / ff["samples_per_s"], 3)})
        if (m, s, b, path, rec) in old_best:
            r0 = old_best[(m, s, b, path, rec)]
            rows[-1]["baseline_tree_samples_per_s"] = round(r0["samples_per_s"], 2)
            rows[-1]["ratio_to_baseline_tree"] = round(r["samples_per_s"]
                                                       / r0["samples_per_s"], 3)
    return {"baseline": {str(b): {"method": "dcls", "sparsity": 0.0, "batch_size": b,
                                  "dcls_path": v["dcls_path"],
                                  "samples_per_s": round(v["samples_per_s"], 2),
                                  "peak_rss_mb": round(v["peak_bytes"] / 2 ** 20, 1)}
                         for b, v in base.items()},
            "runs": rows,
            "setup": {"shape": "40 -> 256 -> 10", "time_steps": 100, "kernel_size": 25,
                      "device": device, "threads": threads, "timed_steps": steps,
                      "repeats": repeats, "schedule_points": schedule_points,
                      "timed_steps_note": "dcls: timed_steps at each schedule point",
                      "loadavg_start": [round(v, 2) for v in load_start],
                      "loadavg_end": [round(v, 2) for v in os.getloadavg()],
                      "cpu_count": os.cpu_count(),
                      "baseline_tree": None if baseline_tree is None else
                      "another commit's code (--baseline-tree), same machine, interleaved",
                      **({} if baseline_tree is None else
                         {"baseline_tree_commit": _tree_commit(baseline_tree)}),
                      "peak_memory": "CUDA max allocated; CPU peak RSS "
                      "of the subprocess minus its RSS after imports"}}


def _tree_commit(tree: Path) -> str | None:
    """The short commit of a baseline tree that is a git checkout (`git worktree add --detach
    DIR COMMIT`), else None (a `git archive` extract does not say)."""
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    top = subprocess.run(["git", "-C", str(tree), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True)
    if out.returncode or top.returncode or Path(top.stdout.strip()).resolve() != tree.resolve():
        return None
    return out.stdout.strip()


def main(argv=None) -> int:
    from trainer.config import load_defaults
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5,
                   help="timed training steps per configuration and schedule point (default 5: "
                        "8 points x 5 = 40 steps, 4 of them RigL regrowth steps)")
    p.add_argument("--batches", type=int, nargs="+",
                   default=sorted({256, int(load_defaults()["batch_size"])}, reverse=True))
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.9, 0.97],
                   help="sparsities of every method (default 0 0.5 0.9 0.97)")
    p.add_argument("--dcls-sparsities", type=float, nargs="*", default=[0.98],
                   help="more sparsities for dcls only (default 0.98)")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                   help="delay methods (default: all)")
    p.add_argument("--schedule-points", type=int, default=8,
                   help="dcls: time --steps steps at this many points of the sigma schedule "
                        "and average (default 8; 0 = sigma 1.0 only)")
    p.add_argument("--no-dense-path", action="store_true",
                   help="leave out dense dcls on the earlier kernel path (dcls_path dense)")
    p.add_argument("--recurrent", action="store_true",
                   help="also time each configuration with recurrent hidden layers at the same "
                        "total synapse count (default: off)")
    p.add_argument("--baseline-tree", metavar="DIR",
                   help="also time the feed-forward configurations with the code in DIR "
                        "(another commit's files), interleaved (default: none)")
    p.add_argument("--recurrent-crossover", action="store_true",
                   help="time the recurrent loop's dense and sparse paths over densities "
                        "(default: off)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--repeats", type=int, default=2,
                   help="rounds over all configurations; the best round counts (busy machines)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.threads < 1 or a.steps < 1 or a.repeats < 1 or a.schedule_points < 0:
        p.error("--threads, --steps and --repeats must be >= 1, --schedule-points >= 0")
    if (any(not 0 <= s < 1 for s in a.sparsities + a.dcls_sparsities)
            or any(b < 1 for b in a.batches)):
        p.error("sparsities must be in [0, 1) and batches >= 1")
    if a.json and not Path(a.json).parent.is_dir():
        p.error(f"--json: folder {Path(a.json).parent} does not exist")
    if a.child:
        import torch
        torch.set_num_threads(a.threads)
        kind, s, b, path, *rec = a.child.split(":")
        print(json.dumps(measure(kind, float(s), a.steps, int(b), a.device, path or None,
                                 a.schedule_points, recurrent=rec == ["r"])))
        return 0
    tree = Path(a.baseline_tree).resolve() if a.baseline_tree else None
    if tree is not None and not (tree / "bench" / "train_speed.py").is_file():
        p.error(f"--baseline-tree: {tree} holds no bench/train_speed.py")
    runs = with_recurrent(grid(a.methods, a.sparsities, a.batches,
                               dcls_sparsities=a.dcls_sparsities, dense_path=not a.no_dense_path),
                          a.recurrent)
    doc = run_grid(runs, a.steps, a.device, a.threads, a.repeats, a.schedule_points, tree)
    if a.recurrent_crossover:
        import torch
        torch.set_num_threads(a.threads)
        doc["recurrent_crossover"] = recurrent_crossover([0.01, 0.03, 0.1, 0.2, 0.4])
    print(f"training speed, 100 steps, 40 -> 256 -> 10, K = 25, device {a.device}, threads "
          f"{a.threads}, {a.steps} timed steps each (dcls: at each of {a.schedule_points} "
          "schedule points); ratios to dense dcls at the same batch")
    print(f"{'method':16s} {'sparsity':>8s} {'batch':>5s} {'path':>5s} {'rec':>3s} "
          f"{'samples/s':>10s} {'x dcls':>7s} {'peak MiB':>9s} {'x dcls':>7s} {'x ff':>6s}")
    for r in doc["runs"]:
        print(f"{r['method']:16s} {r['sparsity']:8.4g} {r['batch_size']:5d} "
              f"{r['dcls_path'] or '':>5s} {'yes' if r['recurrent'] else '':>3s} "
              f"{r['samples_per_s']:10.1f} {r['ratio_to_dense_dcls']:7.2f} "
              f"{r['peak_rss_mb']:9.0f} {r['peak_ratio_to_dense_dcls']:7.2f} "
              f"{r.get('ratio_to_feed_forward', ''):>6}")
    if a.json:
        from trainer.file_io import write_json_atomic
        write_json_atomic(doc, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
