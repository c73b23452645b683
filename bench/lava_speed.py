"""Speed of Lava's stock delay models, this runtime's models with one lane and with many lanes,
and the emulator, measured in one run on the same network and inputs, outputs checked identical.

Network: FSDD shape, 40 -> 256 -> 10, delays 0..24 (K = 25), 90% sparse, 8-bit graded input,
T = 100 steps per sample (+ padding for the delay buffers); `--shape shd`: 700 -> 256 -> 256 ->
20, binary input spikes.

Measurements:
1. models alone: the stock and fast DelaySparse/DelayDense ProcessModels stepped in-process on
   the same input (no Lava runtime): ms per step and their ratio;
2. whole Lava runs, samples/s of Lava run time (after start-up, which is reported apart):
   stock models (one lane), this runtime's models with one lane, and with L lanes (L chosen
   by lava_runtime.lava_graph.lanes.choose_lanes unless --lanes), then the emulator; every output is
   checked equal to the emulator's (and the stock run's on the samples it ran). Targets:
   multi-lane >= 20x stock samples/s, and the lanes run of --lane-samples (300 = the FSDD
   test split's size) in < 10 s of Lava time.

Thread counts are pinned to 1 (OMP/MKL/OpenBLAS) for this process and the Lava workers. Each
Lava configuration runs --repeats times and the fastest run counts (the machine may be shared:
timings are upper bounds).

Usage: python bench/lava_speed.py [--shape fsdd|shd] [--stock-samples 4] [--single-samples 16]
                                  [--lane-samples 300] [--lanes N] [--repeats 1] [--json FILE]
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"  # before numpy loads; the Lava workers inherit it

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deployed.emulator import emulate  # noqa: E402
from lava_runtime.lava_graph.graph import run_network  # noqa: E402
from deployed.synthetic import random_network, random_payloads  # noqa: E402
from trainer.file_io import write_json_atomic  # noqa: E402

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

    from lava_runtime.lava_graph.procs.fast_models import FastDelayDenseFixed, FastDelaySparseFixed
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


def same(a, b, n: int | None = None) -> bool:
    """Identical spikes and readout voltages on the first n samples (all if None)."""
    return (np.array_equal(a.readout_v[:n], b.readout_v[:n])
            and all(np.array_equal(x[:n], y[:n]) for x, y in zip(a.spikes, b.spikes)))


def lava_run(net, payloads, repeats: int, **kwargs) -> tuple[dict, object]:
    """The fastest of `repeats` Lava runs: its figures and Activity (all runs must agree)."""
    best, act = None, None
    for _ in range(repeats):
        a = run_network(net, payloads, **kwargs)
        if act is not None and not same(a, act):
            raise SystemExit("FAIL: two runs of the same configuration differ")
        x = a.extra
        if best is None or x["lava_run_seconds"] < best["lava_run_seconds"]:
            best = {"samples": int(payloads.shape[0]), "lanes": x["lanes"],
                    "total_steps": x["total_steps"], "lava_run_seconds": x["lava_run_seconds"],
                    "lava_startup_seconds": x["lava_startup_seconds"],
                    "samples_per_second": x["samples_per_second"],
                    "steps_per_second": x["steps_per_second"],
                    "n_processes": x["n_processes"]}
        act = a
    return best, act


def build(shape: str, n: int, seed: int):
    if shape == "fsdd":
        net = random_network((40, 256, 10), time_steps=100, density=0.1, max_delay=24,
                             message_bits=8, seed=seed)
        return net, random_payloads(net, n, seed=seed)
    # SHD-like: 700 binary input channels, two hidden layers (lava.md's measurement)
    net = random_network((700, 256, 256, 20), time_steps=100, density=0.1, max_delay=24,
                         message_bits=0, input_weight_exp=0, vth=400, seed=seed)
    return net, random_payloads(net, n, density=0.05, seed=seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--shape", choices=["fsdd", "shd"], default="fsdd",
                    help="fsdd: 40 -> 256 -> 10 graded (the target case); shd: 700 -> 256 -> "
                         "256 -> 20 binary spikes")
    ap.add_argument("--stock-samples", type=int, default=4,
                    help="samples through the stock-model Lava run")
    ap.add_argument("--single-samples", type=int, default=16,
                    help="samples through the one-lane run of this runtime's models")
    ap.add_argument("--lane-samples", type=int, default=FSDD_TEST_SAMPLES,
                    help="samples through the multi-lane run and the emulator")
    ap.add_argument("--lanes", type=int, default=None,
                    help="lanes of the multi-lane run (default: chosen automatically)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs per Lava configuration; the fastest counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    for name in ("stock_samples", "single_samples", "lane_samples", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.lanes is not None and args.lanes < 2:
        ap.error("--lanes must be >= 2 (the one-lane run is measured anyway)")
    if args.json and not Path(args.json).parent.is_dir():
        ap.error(f"--json: folder {Path(args.json).parent} does not exist")

    n_all = max(args.lane_samples, args.single_samples, args.stock_samples)
    net, pay = build(args.shape, n_all, args.seed)
    T = net.input.time_steps
    window = T + net.padding_steps()
    sizes = " -> ".join(str(n) for n in [net.input.n_channels] + [L.n_out for L in net.layers])
    print(f"network {sizes}, {'+'.join(str(L.n_synapses) for L in net.layers)} synapses, "
          f"delays 0..{max(L.max_delay for L in net.layers)}, window {window} steps "
          f"(T = {T} + padding {net.padding_steps()})")

    few = pay[:args.stock_samples]
    emu_full = emulate(net, few, steps=window)
    models = bench_models(net, np.pad(few, ((0, 0), (0, window - T), (0, 0))),
                          emu_full.spikes)
    print("\n1. delay models alone (in-process, ms per step, outputs identical):")
    for r in models:
        print(f"   {r['layer']} {r['process']:<11} stock {r['stock_ms']:7.3f}  fast "
              f"{r['fast_ms']:6.3f}  ratio {r['ratio']:6.1f}x")

    stock, stock_act = lava_run(net, few, args.repeats, fast_models=False, lanes=1)
    single, single_act = lava_run(net, pay[:args.single_samples], args.repeats, lanes=1)
    multi, multi_act = lava_run(net, pay[:args.lane_samples], args.repeats, lanes=args.lanes)
    times = []
    for _ in range(4):  # the first call warms up (page faults of fresh arrays): best of 3 after
        t0 = time.perf_counter()
        emu = emulate(net, pay[:args.lane_samples])
        times.append(time.perf_counter() - t0)
    emu_sps = args.lane_samples / min(times[1:])
    checks = {"stock_equals_emulator": same(stock_act, emu, args.stock_samples),
              "single_lane_equals_emulator": same(single_act, emu, args.single_samples),
              "multi_lane_equals_emulator": same(multi_act, emu),
              "multi_lane_equals_stock": same(multi_act, stock_act, args.stock_samples)}
    if not all(checks.values()):
        print(f"FAIL: outputs differ: {checks}")
        return 1
    base = stock["samples_per_second"]
    print("\n2. whole Lava runs (samples/s of Lava run time, after start-up), outputs identical "
          "to the emulator's:")
    for name, r in (("stock models, 1 lane", stock), ("this runtime, 1 lane", single),
                    (f"this runtime, {multi['lanes']} lanes", multi)):
        print(f"   {name:<26} {r['samples']:4d} samples {r['samples_per_second']:8.1f} "
              f"samples/s ({r['total_steps']} steps in {r['lava_run_seconds']:.2f} s + "
              f"{r['lava_startup_seconds']:.1f} s start-up)   {r['samples_per_second'] / base:6.1f}x")
    print(f"   {'emulator':<26} {args.lane_samples:4d} samples {emu_sps:8.1f} samples/s "
          f"{'':>42}{emu_sps / base:6.1f}x")
    ratio = multi["samples_per_second"] / base
    print(f"\ntargets: multi-lane >= 20x stock samples/s: {ratio:.1f}x; {args.lane_samples} "
          f"samples through Lava in < 10 s of Lava time: {multi['lava_run_seconds']:.1f} s "
          f"(+ {multi['lava_startup_seconds']:.1f} s start-up)")
    res = {"command": "python bench/lava_speed.py " + " ".join(argv if argv is not None
                                                                else sys.argv[1:]),
           "note": "one run on a machine shared with other jobs: timings are upper bounds",
           "threads": 1, "shape": args.shape, "network": sizes, "window_steps": window,
           "models_alone": models, "stock_1_lane": stock, "fast_1_lane": single,
           "fast_multi_lane": multi,
           "emulator": {"samples": args.lane_samples, "samples_per_second": emu_sps},
           "multi_lane_over_stock": ratio,
           "single_lane_over_stock": single["samples_per_second"] / base,
           "multi_lane_over_single_lane": multi["samples_per_second"]
           / single["samples_per_second"],
           "emulator_over_stock": emu_sps / base, "exact_match": checks,
           "emulator_spikes": emu.spike_counts()}
    if args.json:
        write_json_atomic(res, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
