"""Speed of Lava's stock delay models, this runtime's fast models and the emulator, measured in
one run on the same network and inputs, with their outputs checked identical.

Network: FSDD shape, 40 -> 256 -> 10, delays 0..24 (K = 25), 90% sparse, 8-bit graded input,
T = 100 steps per sample (+ padding for the delay buffers).

Three measurements:
1. models alone: the stock and fast DelaySparse/DelayDense ProcessModels stepped in-process on
   the same input (no Lava runtime): ms per step and their ratio (target >= 20x);
2. whole Lava runs (stock vs fast models): steps/s after start-up (Lava's runtime costs about
   0.1 ms per process per step on top of the models, which bounds this ratio);
3. the emulator vs stock Lava per sample (target >= 1000x), and the estimated time of the FSDD
   test split (300 samples) through the Lava backend (target < 5 min).

Usage: python bench/lava_speed.py [--shape fsdd|shd] [--stock-samples 4]
                                  [--emulator-samples 300] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lava_runtime.emulator import emulate  # noqa: E402
from lava_runtime.graph import run_network  # noqa: E402
from lava_runtime.synthetic_net import random_network, random_payloads  # noqa: E402

FSDD_TEST_SAMPLES = 300


class _In:
    def __init__(self, rows):
        self.rows, self.k = rows, 0

    def recv(self):
        self.k += 1
        return self.rows[self.k - 1]


class _Out:
    def __init__(self):
        self.sent = []

    def send(self, x):
        self.sent.append(np.array(x, dtype=np.int64))


def time_model(cls, w, d, x, layer, sparse: bool) -> tuple[float, np.ndarray]:
    """Seconds per step (first step, which sets up weights, excluded) and outputs."""
    m = cls({"weight_exp": layer.weight_exp, "num_weight_bits": layer.num_weight_bits})
    m.weights = sp.csr_matrix(w.astype(np.int32)) if sparse else w.astype(np.int32)
    m.delays = sp.csr_matrix(d.astype(np.int32)) if sparse else d.astype(np.int32)
    m.a_buff = np.zeros((w.shape[0], int(d.max()) + 1), np.int32)
    m.num_message_bits = np.array([layer.input_message_bits])
    m.s_in, m.a_out = _In(list(x.astype(np.int32))), _Out()
    m.time_step = 1
    m.run_spk()
    t0 = time.perf_counter()
    for k in range(1, x.shape[0]):
        m.time_step = k + 1
        m.run_spk()
    return (time.perf_counter() - t0) / (x.shape[0] - 1), np.array(m.a_out.sent)


def bench_models(net, payloads, spikes) -> list[dict]:
    from lava.proc.dense.models import PyDelayDenseModelBitAcc
    from lava.proc.sparse.models import PyDelaySparseModelBitAcc

    from lava_runtime.lava_procs.fast_models import FastDelayDenseFixed, FastDelaySparseFixed
    rows = []
    inputs = [payloads[0]] + [s[0] for s in spikes]  # (steps, n_in) of sample 0 per layer
    for layer, x in zip(net.layers, inputs):
        (w, d), = layer.slots()
        for kind, stock, fast, sparse in (("DelaySparse", PyDelaySparseModelBitAcc,
                                           FastDelaySparseFixed, True),
                                          ("DelayDense", PyDelayDenseModelBitAcc,
                                           FastDelayDenseFixed, False)):
            ts, out_s = time_model(stock, w, d, x, layer, sparse)
            tf, out_f = time_model(fast, w, d, x, layer, sparse)
            if not np.array_equal(out_s, out_f):
                raise SystemExit(f"FAIL: {kind} outputs differ on layer {layer.name}")
            rows.append({"layer": layer.name, "process": kind, "stock_ms": ts * 1e3,
                         "fast_ms": tf * 1e3, "ratio": ts / tf})
    return rows


def same(a, b) -> bool:
    return (np.array_equal(a.readout_v, b.readout_v)
            and all(np.array_equal(x, y) for x, y in zip(a.spikes, b.spikes)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--stock-samples", type=int, default=4,
                    help="samples through the stock and fast Lava runs")
    ap.add_argument("--emulator-samples", type=int, default=FSDD_TEST_SAMPLES,
                    help="samples through the emulator (throughput)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=["fsdd", "shd"], default="fsdd",
                    help="fsdd: 40 -> 256 -> 10 graded (the target case); shd: 700 -> 256 -> "
                         "256 -> 20 binary spikes (compute-bound, like lava.md's measurement)")
    ap.add_argument("--json", default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)

    if args.shape == "fsdd":
        net = random_network((40, 256, 10), time_steps=100, density=0.1, max_delay=24,
                             message_bits=8, seed=args.seed)
        pay = random_payloads(net, max(args.emulator_samples, args.stock_samples),
                              seed=args.seed)
    else:  # SHD-like: 700 binary input channels, two hidden layers (lava.md's measurement)
        net = random_network((700, 256, 256, 20), time_steps=100, density=0.1, max_delay=24,
                             message_bits=0, input_weight_exp=0, vth=400, seed=args.seed)
        pay = random_payloads(net, max(args.emulator_samples, args.stock_samples),
                              density=0.05, seed=args.seed)
    window = net.input.time_steps + net.padding_steps()
    few = pay[:args.stock_samples]
    sizes = " -> ".join(str(n) for n in [net.input.n_channels] + [L.n_out for L in net.layers])
    print(f"network {sizes}, {'+'.join(str(L.n_synapses) for L in net.layers)} synapses, "
          f"delays 0..{max(L.max_delay for L in net.layers)}, window {window} steps "
          f"(T = 100 + padding {net.padding_steps()})")

    emu_full = emulate(net, few, steps=window)
    models = bench_models(net, np.pad(few, ((0, 0), (0, window - 100), (0, 0))),
                          emu_full.spikes)
    print("\n1. delay models alone (in-process, ms per step, outputs identical):")
    for r in models:
        print(f"   {r['layer']} {r['process']:<11} stock {r['stock_ms']:7.3f}  fast "
              f"{r['fast_ms']:6.3f}  ratio {r['ratio']:6.1f}x")

    stock = run_network(net, few, fast_models=False)
    fast = run_network(net, few, fast_models=True)
    emu = emulate(net, few)
    if not (same(stock, fast) and same(fast, emu)):
        print("FAIL: stock Lava, fast Lava and emulator outputs differ")
        return 1
    s_sps, f_sps = stock.extra["steps_per_second"], fast.extra["steps_per_second"]
    print(f"\n2. whole Lava runs, {args.stock_samples} samples, outputs identical "
          f"(stock = fast = emulator), {stock.extra['n_processes']} Lava processes:")
    print(f"   stock models {s_sps:8.0f} steps/s  (start-up "
          f"{stock.extra['lava_startup_seconds']:.1f} s)")
    print(f"   fast models  {f_sps:8.0f} steps/s  (start-up "
          f"{fast.extra['lava_startup_seconds']:.1f} s)   ratio {f_sps / s_sps:.1f}x")

    times = []
    for _ in range(4):  # the first call warms up (page faults of fresh arrays): best of 3 after
        t0 = time.perf_counter()
        many = emulate(net, pay[:args.emulator_samples])
        times.append(time.perf_counter() - t0)
    emu_s = min(times[1:]) / args.emulator_samples
    stock_sample_s = window / s_sps
    fast_sample_s = window / f_sps
    est = FSDD_TEST_SAMPLES * window / f_sps + fast.extra["lava_startup_seconds"]
    print(f"\n3. per sample: stock Lava {stock_sample_s * 1e3:.1f} ms, fast Lava "
          f"{fast_sample_s * 1e3:.1f} ms, emulator {emu_s * 1e3:.3f} ms "
          f"({args.emulator_samples} samples batched, best of 3 after a warm-up)")
    print(f"   emulator vs stock Lava: {stock_sample_s / emu_s:.0f}x; "
          f"vs fast Lava: {fast_sample_s / emu_s:.0f}x")
    print(f"   {FSDD_TEST_SAMPLES} samples (the FSDD test split's size) x {window} steps through "
          f"the Lava backend: estimated {est:.0f} s (target < 300 s for the fsdd shape)")
    best = max(r["ratio"] for r in models if r["process"] == "DelaySparse")
    res = {"window_steps": window, "models": models,
           "lava_stock_steps_per_s": s_sps, "lava_fast_steps_per_s": f_sps,
           "lava_fast_over_stock": f_sps / s_sps,
           "emulator_ms_per_sample": emu_s * 1e3, "stock_lava_ms_per_sample": stock_sample_s * 1e3,
           "emulator_over_stock_lava": stock_sample_s / emu_s,
           "fsdd_test_estimate_s": est, "emulator_spikes": many.spike_counts()}
    print(f"\ntargets: fast models >= 20x stock: DelaySparse layer ratio up to {best:.0f}x "
          f"(whole run {f_sps / s_sps:.1f}x); emulator >= 1000x stock Lava: "
          f"{stock_sample_s / emu_s:.0f}x; FSDD test < 300 s: {est:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
