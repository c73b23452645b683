"""Benchmark: first (computing) vs second (cached) load of the FSDD training features.

Usage: python bench/feature_cache.py [--data-dir DIR] [--repeats N]
Uses a fresh temporary cache folder, so the first load always computes the Mel features of the
2700 training recordings; prints both wall-clock times (s) and their ratio, measured in this run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.data import load_dataset  # noqa: E402


def measure(data_dir=None, repeats: int = 3) -> dict:
    """{"first_s", "second_s" (median of ``repeats`` cached loads), "ratio", "n"}."""
    with tempfile.TemporaryDirectory(prefix="delaysnn-bench-") as cache:
        t0 = time.perf_counter()
        ds = load_dataset("fsdd", "train", data_dir, cache_dir=cache, val_fraction=0.0)
        first = time.perf_counter() - t0
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            again = load_dataset("fsdd", "train", data_dir, cache_dir=cache, val_fraction=0.0)
            seconds.append(time.perf_counter() - t0)
        assert (again.x == ds.x).all()
    second = sorted(seconds)[len(seconds) // 2]
    return {"n": len(ds), "first_s": first, "second_s": second, "ratio": second / first}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="FSDD recordings folder (default: ../shared/data/fsdd/recordings)")
    ap.add_argument("--repeats", type=int, default=3, help="cached loads to time (median)")
    args = ap.parse_args(argv)
    r = measure(args.data_dir, args.repeats)
    print(f"FSDD train features, {r['n']} recordings")
    print(f"first load (compute + write cache): {r['first_s']:.3f} s")
    print(f"second load (cached):               {r['second_s']:.3f} s")
    print(f"ratio second / first:               {r['ratio']:.3f} ({1 / r['ratio']:.1f}x faster)")


if __name__ == "__main__":
    main()
