"""Density crossover of a delay layer's two execution paths (dense kernel vs sparse).

For each sparse method and layer shape of the reference network (40 -> 256 and 256 -> 10,
K = 25, 100 steps per sample), times forward + backward of one DelayConnection on the dense
kernel path and on the sparse path (trainer.sparse_delay) at several kernel densities
``connections / (n_out * n_in * K)`` (K = 1 for no-delay), interleaved, best of --repeats, in
one process with an explicit thread count. Prints dense time / sparse time (> 1: the sparse path
is faster) and, per method and shape, the largest measured density at which the sparse path was
faster. trainer/defaults.toml's ``sparse_max_density`` is chosen from these figures. The RigL
candidate gradient is not included (it runs on 1 in rewire_interval steps).

    python bench/sparse_crossover.py [--json OUT.json] [--batch 32] [--threads 1]
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


def time_layer(layer, x, repeats: int) -> float:
    """Best wall time (s) of forward + backward over ``repeats`` runs after one warm-up."""
    best = float("inf")
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        layer(x).sum().backward()
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def crossover(batch: int, K: int, repeats: int, methods=tuple(DENSITIES)) -> dict:
    import torch
    from trainer.layers import DelayConnection
    rows = []
    for method in methods:
        for n_in, n_out in SHAPES:
            x = torch.rand(batch, n_in, 100, generator=torch.Generator().manual_seed(0)) * 0.1
            x.requires_grad_(n_in != 40)            # the first layer's input needs no gradient
            for d in DENSITIES[method]:
                # structure: one candidate per pair on a K-tap kernel; the others one per tap
                sparsity = 1 - d * K if method == "structure" else 1 - d
                t = {}
                for path, limit in (("dense", 0.0), ("sparse", 1.0)):
                    layer = DelayConnection(n_in, n_out, K, method, sparsity,
                                            torch.Generator().manual_seed(0),
                                            sparse_max_density=limit)
                    assert layer.sparse_path == (path == "sparse")
                    t[path] = time_layer(layer, x, repeats)
                rows.append({"method": method, "n_in": n_in, "n_out": n_out,
                             "density": round(layer.kernel_density, 5),
                             "sparsity": round(sparsity, 5), "dense_s": round(t["dense"], 4),
                             "sparse_s": round(t["sparse"], 4),
                             "speedup": round(t["dense"] / t["sparse"], 3)})
                print(f"{method:16s} {n_in:3d}->{n_out:<3d} density {layer.kernel_density:7.4f} "
                      f"dense {t['dense']:7.3f} s sparse {t['sparse']:7.3f} s  x{rows[-1]['speedup']:.2f}",
                      flush=True)
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
    p.add_argument("--json", help="write the figures to this JSON file")
    a = p.parse_args(argv)
    if min(a.batch, a.kernel_size, a.threads, a.repeats) < 1:
        p.error("--batch, --kernel-size, --threads and --repeats must be >= 1")
    if a.json and not Path(a.json).parent.is_dir():
        p.error(f"--json: folder {Path(a.json).parent} does not exist")
    import torch
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    doc = crossover(a.batch, a.kernel_size, a.repeats)
    doc["setup"] = {"batch": a.batch, "kernel_size": a.kernel_size, "time_steps": 100,
                    "threads": a.threads, "repeats": a.repeats, "device": "cpu"}
    for k, v in doc["sparse_faster_up_to_density"].items():
        print(f"{k}: sparse path faster up to density {v}")
    if a.json:
        from trainer.file_io import write_json_atomic
        write_json_atomic(doc, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
