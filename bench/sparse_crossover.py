"""Density crossover of a delay layer's two execution paths (dense kernel vs sparse).

For each sparse method and layer shape of the reference network (40 -> 256 and 256 -> 10,
K = 25, 100 steps per sample), times forward + backward of one DelayConnection on the dense
kernel path and on the sparse path (trainer.sparse_delay) at several kernel densities
``connections / (n_out * n_in * K)`` (K = 1 for no-delay), interleaved, best of --repeats, in
one process with an explicit thread count. Prints dense time / sparse time (> 1: the sparse path
is faster) and, per method and shape, the largest measured density at which the sparse path was
faster. trainer/defaults.toml's ``sparse_max_density`` is chosen from these figures. The RigL
candidate gradient is not included (it runs on 1 in rewire_interval steps).
``--methods dcls`` (not in the default list) does the same for truncated DCLS kernels
(dcls_path "auto"), sparsity 0.9 at several sigmas and 0.8 to 0.5 with every tap: the density
is the tap density
``connections * W / (n_out * n_in * K)``, set through sigma (W kept taps, trainer.dcls_taps);
``sparse_max_density_dcls`` is chosen from it. Its inputs are laid out as in the network
(features (B, T, C) for the first layer, the sparse path's (T, N, B) for the readout).

    python bench/sparse_crossover.py [--json OUT.json] [--batch 32] [--threads 1]
        [--methods structure structure-multi no-delay | dcls]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPES = [(40, 256), (256, 10)]
DENSITIES = {"structure": [0.004, 0.01, 0.02, 0.036], "structure-multi": [0.004, 0.01, 0.02, 0.05],
             "no-delay": [0.01, 0.02, 0.05, 0.1]}
# dcls: (sparsity, sigma); at 0.9, W = 4, 7, 10, 13, 16, 22, 25 kept taps of K = 25
DCLS_POINTS = [(0.9, 0.0), (0.9, 0.23), (0.9, 0.5), (0.9, 0.77), (0.9, 1.0), (0.9, 1.5),
               (0.9, 3.0), (0.8, 3.0), (0.7, 3.0), (0.5, 3.0)]


def time_layer(layer, x, repeats: int) -> float:
    """Best wall time (s) of forward + backward over ``repeats`` runs after one warm-up."""
    best = float("inf")
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        layer(x).sum().backward()
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def _layer(method: str, n_in: int, n_out: int, K: int, point, sparse: bool):
    """(layer, density) for one measured point: a kernel density, or for dcls (sparsity,
    sigma)."""
    import torch

    from trainer.layers import DelayConnection
    gen = torch.Generator().manual_seed(0)
    limit = 1.0 if sparse else 0.0
    if method == "dcls":
        layer = DelayConnection(n_in, n_out, K, "dcls", point[0], gen, dcls_path="auto",
                                dcls_max_density=limit)
        layer.set_sigma(point[1])
        return layer, layer.dcls_tap_density()
    # structure: one candidate per pair on a K-tap kernel; the others one per tap
    sparsity = 1 - point * K if method == "structure" else 1 - point
    layer = DelayConnection(n_in, n_out, K, method, sparsity, gen, sparse_max_density=limit)
    return layer, layer.kernel_density


def crossover(batch: int, K: int, repeats: int, methods=tuple(DENSITIES)) -> dict:
    import torch
    rows = []
    for method in methods:
        for n_in, n_out in SHAPES:
            x = torch.rand(batch, n_in, 100, generator=torch.Generator().manual_seed(0)) * 0.1
            if method == "dcls":     # the layouts the network hands over: features (B, T, C),
                x = x.permute(0, 2, 1).contiguous().permute(0, 2, 1) if n_in == 40 else \
                    x.permute(2, 1, 0).contiguous().permute(2, 1, 0)   # spikes (T, N, B)
            x.requires_grad_(n_in != 40)            # the first layer's input needs no gradient
            for point in (DCLS_POINTS if method == "dcls" else DENSITIES[method]):
                t = {}
                for path in ("dense", "sparse"):
                    layer, density = _layer(method, n_in, n_out, K, point, path == "sparse")
                    assert layer.sparse_path == (path == "sparse")
                    t[path] = time_layer(layer, x, repeats)
                sparsity = layer.sparsity
                rows.append({"method": method, "n_in": n_in, "n_out": n_out,
                             "density": round(density, 5),
                             "sparsity": round(sparsity, 5), "dense_s": round(t["dense"], 4),
                             "sparse_s": round(t["sparse"], 4),
                             "speedup": round(t["dense"] / t["sparse"], 3)})
                if method == "dcls":
                    rows[-1].update(sigma=point[1], kept_taps=layer.dcls_window()[0])
                print(f"{method:16s} {n_in:3d}->{n_out:<3d} density {density:7.4f} "
                      f"dense {t['dense']:7.3f} s sparse {t['sparse']:7.3f} s  "
                      f"x{rows[-1]['speedup']:.2f}", flush=True)
    cross = {}
    for r in rows:
        key = f"{r['method']} {r['n_in']}->{r['n_out']}"
        if r["speedup"] > 1:
            cross[key] = max(cross.get(key, 0.0), r["density"])
        else:
            cross.setdefault(key, 0.0)
    return {"rows": rows, "sparse_faster_up_to_density": cross}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--kernel-size", type=int, default=25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=list(DENSITIES),
                   choices=[*DENSITIES, "dcls"],
                   help="methods (default: structure structure-multi no-delay)")
    p.add_argument("--json", help="write the figures to this JSON file")
    a = p.parse_args(argv)
    if min(a.batch, a.kernel_size, a.threads, a.repeats) < 1:
        p.error("--batch, --kernel-size, --threads and --repeats must be >= 1")
    if a.json and not Path(a.json).parent.is_dir():
        p.error(f"--json: folder {Path(a.json).parent} does not exist")
    import torch
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    import os
    load = os.getloadavg()
    doc = crossover(a.batch, a.kernel_size, a.repeats, a.methods)
    doc["setup"] = {"batch": a.batch, "kernel_size": a.kernel_size, "time_steps": 100,
                    "threads": a.threads, "repeats": a.repeats, "device": "cpu",
                    "loadavg_start": [round(v, 2) for v in load],
                    "loadavg_end": [round(v, 2) for v in os.getloadavg()]}
    for k, v in doc["sparse_faster_up_to_density"].items():
        print(f"{k}: sparse path faster up to density {v}")
    if a.json:
        from trainer.file_io import write_json_atomic
        write_json_atomic(doc, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
