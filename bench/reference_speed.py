"""DCLS training speed of this project against the reference code, side by side in one run.

The reference is the public code of Meszaros et al. (github.com/mbalazs98/spatiotemporal),
given as a checkout with --reference; nothing of it is part of this project. Both sides train
the reference network (40 -> 256 -> 10 with BatchNorm, K = 25 taps, 100 steps per sample) on
the same random input at the same batch, sparsity and thread count, dropout 0 on both:

  reference  its SnnDelays model (best_config_RawHD.Config with n_outputs 10 and the given
             sparsity), one iteration of its training loop (Model.train_model): forward,
             loss with its L1 term, backward, its two Adam optimisers, reset_model (its
             rewiring when sparse);
  project    trainer.train.optimisation_step at the trainer's defaults (bench/train_speed.py's
             measurement, ``measure``).
Both are timed at --schedule-points points of the project's sigma schedule (the same sigma on
both sides; flush-to-zero on, as the reference's own runs need), in subprocesses, --repeats
interleaved rounds, the fastest round kept; the 1-minute load average is recorded around each.

    python bench/reference_speed.py --reference DIR [--sparsities 0] [--batch 256]
        [--threads 2] [--steps 3] [--schedule-points 8] [--repeats 2] [--json OUT.json]

--json writes {"runs": [{"sparsity", "reference_samples_per_s", "project_samples_per_s",
"ratio", "loadavg"}], "setup"} (the reference's commit when DIR is a git checkout).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure_reference(ref_dir: str, sparsity: float, steps: int, batch: int,
                      schedule_points: int) -> dict:
    """samples/s of the reference's training iteration, mean step time over the schedule."""
    sys.path.insert(0, ref_dir)
    import torch
    import torch.nn.functional as F
    from best_config_RawHD import Config  # type: ignore[import-not-found]
    from snn_delays import SnnDelays  # type: ignore[import-not-found]

    from bench.train_speed import schedule_sigmas
    torch.set_flush_denormal(True)
    cfg = Config()
    cfg.n_outputs, cfg.sparsity_p, cfg.batch_size, cfg.dropout_p = 10, sparsity, batch, 0.0
    model = SnnDelays(cfg)
    model.train()
    opts = model.optimizers()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 100, 40, generator=g) * 0.08)
    y = torch.randint(0, 10, (batch,), generator=g)

    def step():                       # the body of Model.train_model's batch loop
        blocks = model.blocks
        if cfg.dynamic:
            model.mask = [b[0][0].weight.data > 0 for b in blocks]
        yy = F.one_hot(y, cfg.n_outputs).float()
        for opt in opts:
            opt.zero_grad()
        out = model(x.permute(1, 0, 2))
        loss = model.calc_loss(out, yy)
        for b in blocks:
            loss = loss + cfg.l1_lambda * torch.norm(b[0][0].weight, 1)
        loss.backward()
        if cfg.dynamic:
            model.grad = [b[0][0].weight.grad for b in blocks]
        for opt in opts:
            opt.step()
        model.calc_metric(out, yy)
        model.reset_model(train=True)

    def set_sigma(sigma):
        with torch.no_grad():
            for b in model.blocks:
                b[0][0].SIG.fill_(sigma)
    points = schedule_sigmas(schedule_points) if schedule_points else [(None, 1.0)]
    set_sigma(points[0][1])
    step()
    total = 0.0
    for _, sigma in points:
        set_sigma(sigma)
        step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total += time.perf_counter() - t0
    return {"samples_per_s": len(points) * steps * batch / total}


def measure_project(sparsity: float, steps: int, batch: int, schedule_points: int) -> dict:
    from bench.train_speed import measure
    r = measure("dcls", sparsity, steps, batch, "cpu", None, schedule_points)
    return {"samples_per_s": r["samples_per_s"], "dcls_path": r["dcls_path"]}


def _git_commit(path: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def run(reference: Path, sparsities=(0.0,), batch: int = 256, threads: int = 2, steps: int = 3,
        schedule_points: int = 8, repeats: int = 2) -> dict:
    """Both sides at every sparsity, interleaved rounds, best kept; the --json document."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    best: dict = {}
    load_start = os.getloadavg()
    for rnd in range(repeats):
        for s in sparsities:
            for side in ("reference", "project"):
                load = os.getloadavg()[0]
                out = subprocess.run(
                    [sys.executable, __file__, "--child", side, "--reference", str(reference),
                     "--sparsities", str(s), "--batch", str(batch), "--threads", str(threads),
                     "--steps", str(steps), "--schedule-points", str(schedule_points)],
                    capture_output=True, text=True, env=env, cwd=REPO)
                if out.returncode != 0:
                    raise RuntimeError(f"{side} sparsity {s} failed:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["loadavg"] = [round(load, 2), round(os.getloadavg()[0], 2)]
                print(f"  round {rnd + 1}: {side:9s} S={s:<5} {r['samples_per_s']:7.1f} samples/s "
                      f"(load {r['loadavg'][0]:.1f} -> {r['loadavg'][1]:.1f})", file=sys.stderr)
                old = best.get((side, s))
                if old is None or r["samples_per_s"] > old["samples_per_s"]:
                    best[(side, s)] = r
    rows = []
    for s in sparsities:
        ref, proj = best[("reference", s)], best[("project", s)]
        rows.append({"sparsity": s, "reference_samples_per_s": round(ref["samples_per_s"], 2),
                     "project_samples_per_s": round(proj["samples_per_s"], 2),
                     "project_dcls_path": proj["dcls_path"],
                     "ratio": round(proj["samples_per_s"] / ref["samples_per_s"], 3),
                     "loadavg": {"reference": ref["loadavg"], "project": proj["loadavg"]}})
    return {"runs": rows,
            "setup": {"reference": "github.com/mbalazs98/spatiotemporal",
                      "reference_commit": _git_commit(reference), "shape": "40 -> 256 -> 10",
                      "time_steps": 100, "kernel_size": 25, "batch_size": batch, "dropout": 0.0,
                      "threads": threads, "timed_steps_per_point": steps,
                      "schedule_points": schedule_points, "repeats": repeats,
                      "loadavg_start": [round(v, 2) for v in load_start],
                      "loadavg_end": [round(v, 2) for v in os.getloadavg()],
                      "cpu_count": os.cpu_count()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", required=True,
                   help="folder of a checkout of github.com/mbalazs98/spatiotemporal (required)")
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0],
                   help="DCLS sparsities, both sides (default 0)")
    p.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--steps", type=int, default=3,
                   help="timed steps at each schedule point (default 3)")
    p.add_argument("--schedule-points", type=int, default=8,
                   help="points of the sigma schedule (default 8; 0 = sigma 1.0 only)")
    p.add_argument("--repeats", type=int, default=2,
                   help="interleaved rounds; the best counts (default 2)")
    p.add_argument("--json", help="write the results to this JSON file (default: none)")
    p.add_argument("--child", choices=["reference", "project"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    ref = Path(a.reference)
    if not (ref / "snn_delays.py").is_file() or not (ref / "best_config_RawHD.py").is_file():
        p.error(f"--reference: {ref} holds no snn_delays.py and best_config_RawHD.py; give a "
                "checkout of github.com/mbalazs98/spatiotemporal")
    if a.threads < 1 or a.steps < 1 or a.repeats < 1 or a.batch < 1 or a.schedule_points < 0:
        p.error("--threads, --steps, --repeats and --batch must be >= 1, --schedule-points >= 0")
    if any(not 0 <= s < 1 for s in a.sparsities):
        p.error("--sparsities must be in [0, 1)")
    if a.json and not Path(a.json).parent.is_dir():
        p.error(f"--json: folder {Path(a.json).parent} does not exist")
    if a.child:
        import torch
        torch.set_num_threads(a.threads)
        s = a.sparsities[0]
        r = (measure_reference(str(ref.resolve()), s, a.steps, a.batch, a.schedule_points)
             if a.child == "reference" else
             measure_project(s, a.steps, a.batch, a.schedule_points))
        print(json.dumps(r))
        return 0
    doc = run(ref, a.sparsities, a.batch, a.threads, a.steps, a.schedule_points, a.repeats)
    print(f"DCLS training, batch {a.batch}, {a.threads} thread(s), samples/s over "
          f"{a.schedule_points} schedule points")
    for r in doc["runs"]:
        print(f"sparsity {r['sparsity']:<5}: reference {r['reference_samples_per_s']:7.1f}, "
              f"project {r['project_samples_per_s']:7.1f} ({r['ratio']:.2f}x)")
    if a.json:
        from trainer.file_io import write_json_atomic
        write_json_atomic(doc, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
