"""Training speed and peak memory of every delay method against a plain dense Conv1d network.

Reference shape: batch 256, 100 steps, 40 -> 256 -> 10, K = 25 (delays 0..24 steps). Each
configuration runs in its own subprocess (so peak memory is its own): a few warm-up steps, then
timed full training steps (forward with training kernels, backward, Adam, rewiring) through
trainer.train.optimisation_step. The baseline, measured in the same run, is the same network
with nn.Conv1d layers holding dense (post, pre, K) kernels. Each configuration runs --repeats
times (rounds interleaved) and the fastest round counts, as the machine may be shared. Prints
samples/s, peak memory (CUDA: max allocated; CPU: peak RSS of the subprocess minus its RSS after
imports) and both as ratios to the dense baseline. On a busy CPU use --threads 1: OpenMP
oversubscription makes multi-threaded timings meaningless there.

    python bench/train_speed.py [--steps 5] [--device cpu|cuda] [--batch 256] [--threads N]
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
METHODS = ["dcls", "structure", "structure-multi", "no-delay"]


def _rss_bytes() -> int:
    """Current resident set size of this process (bytes, Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(kind: str, sparsity: float, steps: int, batch: int, device: str) -> dict:
    import torch
    from torch import nn
    from trainer.config import resolve_config
    from trainer.model import DelaySNN, loss_fn
    from trainer.neurons import LI, LIF
    from trainer.train import optimisation_step
    torch.set_flush_denormal(True)
    dev = torch.device(device)
    base_rss = _rss_bytes()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 100, 40, generator=g) * 0.08).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    if kind == "dense-conv1d":
        class Dense(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2 = nn.Conv1d(40, 256, 25, bias=False), nn.Conv1d(256, 10, 25, bias=False)
                self.bn, self.lif, self.li = nn.BatchNorm1d(256), LIF(10.05), LI(10.05)

            def forward(self, x):
                h = self.lif(self.bn(self.c1(nn.functional.pad(x.transpose(1, 2), (24, 0)))))
                return self.li(self.c2(nn.functional.pad(h, (24, 0))))
        model = Dense().to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    else:
        cfg = resolve_config(overrides={"method": kind, "sparsity": sparsity, "dropout": 0.0})
        model = DelaySNN(40, 10, cfg).to(dev)
        model.set_sigma(1.0)
        pos = [c.dcls.P for c in model.connections if c.method == "dcls"]
        w = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in pos)]
        opt_w = torch.optim.Adam(w, lr=1e-3)
        opt_p = torch.optim.Adam(pos, lr=0.1) if pos else None
        sparse = [c for c in model.connections if c.sparse]

        def step():
            optimisation_step(model, model, x, y, None, 1.0 / batch, 0.0, opt_w, opt_p, sparse, [])
    for _ in range(2):
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
    return {"kind": kind, "sparsity": sparsity, "samples_per_s": steps * batch / sec,
            "peak_bytes": int(peak)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--repeats", type=int, default=2,
                   help="rounds over all configurations; the best round counts (busy machines)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        import torch
        if a.threads > 0:
            torch.set_num_threads(a.threads)
        kind, s = a.child.split(":")
        print(json.dumps(measure(kind, float(s), a.steps, a.batch, a.device)))
        return 0
    runs = [("dense-conv1d", 0.0)] + [(m, s) for m in METHODS for s in (0.0, 0.9)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    best: dict = {}
    for rnd in range(a.repeats):
        for kind, s in runs:
            out = subprocess.run([sys.executable, __file__, "--child", f"{kind}:{s}", "--steps",
                                  str(a.steps), "--batch", str(a.batch), "--device", a.device,
                                  "--threads", str(a.threads)],
                                 capture_output=True, text=True, env=env, cwd=REPO, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  round {rnd + 1}: {kind:16s} S={s:<4} {r['samples_per_s']:8.1f} samples/s",
                  file=sys.stderr)
            old = best.get((kind, s))
            if old is None or r["samples_per_s"] > old["samples_per_s"]:
                best[(kind, s)] = {**r, "peak_bytes": max(r["peak_bytes"], old["peak_bytes"])
                                   if old else r["peak_bytes"]}
    rows = [best[k] for k in runs]
    base = rows[0]
    print(f"training speed, batch {a.batch}, 100 steps, 40 -> 256 -> 10, K = 25, device "
          f"{a.device}, threads {a.threads or 'default'}, {a.steps} timed steps each")
    print(f"{'method':16s} {'sparsity':>8s} {'samples/s':>10s} {'x dense':>8s} {'peak MiB':>9s} "
          f"{'x dense':>8s}")
    for r in rows:
        print(f"{r['kind']:16s} {r['sparsity']:8.2f} {r['samples_per_s']:10.1f} "
              f"{r['samples_per_s'] / base['samples_per_s']:8.2f} {r['peak_bytes'] / 2**20:9.0f} "
              f"{r['peak_bytes'] / base['peak_bytes']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
