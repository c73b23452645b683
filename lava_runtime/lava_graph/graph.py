"""The Lava process graph of a DeployedNetwork, and run_network(): one call, many samples.

Graph (one Lava run for a whole evaluation):

    PayloadSource --(graded, num_message_bits = layer.input_message_bits)--> DelayDense|DelaySparse
        (one connection process per slot of the layer, all into the same LIF a_in: Lava sums
        them) --> LIFReset (hidden, spikes) --> ... --> ReadoutLIF (non-spiking, v out; or,
        for a spiking output layer, ReadoutLIF(spiking=True): LIFReset dynamics, spikes and v)
    Recorder per spiking LIF (spikes) and one for the last layer's voltage.

Samples follow each other in windows of W = T + net.padding_steps() steps: sample i's input is
sent at Lava steps i*W + 1 .. i*W + T (window steps 0..T-1), then zeros. Each connection layer
adds one step of latency, so layer i (0-based) first receives input at window step i + 1. Layer
i's LIF resets u = v = 0 at window step s_i = net.start_step(i) (LIFReset, reset_interval = W,
reset_offset = s_i + 1: Lava's time_step starts at 1 and the reset happens before the step's
input is integrated): s_i = i + 1 for "aligned" networks, so every layer runs on the trained
model's aligned time axis from zero state, its bias acting from its own step 0 on; s_i = 0 for
"zero" networks (from netx), every layer starting at the window's first step as netx runs them
(deployed.emulator states the arithmetic). The fast delay models of layer i drop their buffers
at the window step its presynaptic layer starts (s_(i-1), 0 for the input; buffer_reset_offset =
that + 1), before receiving that step's input: what layer i - 1 emitted before its own reset (the
previous window's tail, or bias-driven spikes) never reaches layer i. Each window is thus a
fresh network; the first T + latency steps of each window are recorded (the Activity
convention), layer i's values before its reset step as 0. Lava's stock delay models cannot drop
their buffers: with them (fast_models=False) the network must drain within its padding
(stock_models_problem).

Recurrent layers (ConnectionLayer.recurrent, docs/design.md section 8): one more connection
process per recurrent slot (recurrent_slots), from the layer's own LIF s_out back into its own
a_in, with the recurrent weight_exp and num_weight_bits and binary spikes. Like every connection
process it sends its buffer before it receives, so a spike at window step t over a recurrent
synapse of delay d reaches a_in at t + 1 + d, summed with the feed-forward input of that step.
Its buffer is dropped at the layer's own start step (buffer_reset_offset = lif_reset_offset):
what the layer emitted before its reset (the previous window's tail, which recurrence can keep
alive through the padding) never comes back. Stock delay models cannot drop it, so with them
(fast_models=False) only recurrent networks that provably fall silent in time run
(stock_models_problem).

Lanes (lava_runtime.lava_graph.lanes): with L > 1 the graph carries L independent copies of the
network in the same processes (every port and state vector has shape (L, n); the delay
connections are this runtime's LanedDelayDense/LanedDelaySparse), lane j of round r running
sample r * L + j in round r's window. All lanes share the window, so the resets and buffer
drops above happen in every lane at its own sample boundary; one Lava step advances L samples.
Stock delay models run one lane only.

Backends: "lava" (Loihi2SimCfg, fixed_pt, bit-accurate; default), "lava-float" (floating_pt:
weights, bias and threshold converted to the same voltage units, decays as fractions),
"loihi2" (Loihi2HwCfg, needs Intel's lava-loihi package), "emulator" (deployed.emulator,
no Lava at all).

The Lava run itself happens in a child process (lava_runtime.lava_graph.sandbox): bounded by a
timeout, always stopped, no worker process or shared memory left behind. This module imports
Lava only inside build_graph/run_config, which run in that child.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

from deployed import fixed_point as fp
from deployed.activity import Activity
from deployed.network import ConnectionLayer, DeployedNetwork, RecurrentSynapses
from deployed.validate import (
    BACKENDS,
    NetworkError,
    drains_between_samples,
    validate_backend,
    validate_network,
    validate_payloads,
)
from lava_runtime.lava_graph.lanes import check_lanes, lane_shape, resolve_lanes
from lava_runtime.lava_graph.sandbox import LavaRunError, cleanup_job_dir, run_job

SPARSE_BELOW = 0.5  # a slot whose weight density is below this becomes a DelaySparse


def loihi2_available() -> bool:
    """True if Intel's lava-loihi (Loihi 2 hardware compilers) is importable."""
    try:
        return importlib.util.find_spec("lava.magma.compiler.subcompilers.nc") is not None
    except ModuleNotFoundError:
        return False


def require_loihi2() -> None:
    if not loihi2_available():
        raise RuntimeError(
            "backend 'loihi2' runs on Loihi 2 hardware through Intel's lava-loihi package "
            "(INRC members only), which is not installed here; use backend 'lava' (the "
            "bit-accurate fixed_pt simulation) or 'emulator' instead")


def default_timeout_s(total_steps: int, lanes: int = 1) -> float:
    """Generous default bound for one Lava run (s): 120 s start-up + 0.1 s per step + 0.01 s
    per step and extra lane."""
    return 120.0 + (0.1 + 0.01 * (lanes - 1)) * total_steps


def lane_payloads(payloads: np.ndarray, lanes: int) -> np.ndarray:
    """Payloads (N, T, C) laid out for PayloadSource: (rounds, T, lanes, C) int32, sample
    r * lanes + j in round r, lane j; zeros where N ends inside the last round. (A transposed
    view: np.save writes it in that order without another copy.)"""
    n, T, C = payloads.shape
    rounds = -(-n // lanes)
    out = np.zeros((rounds * lanes, T, C), dtype=np.int32)
    out[:n] = payloads
    return out.reshape(rounds, lanes, T, C).transpose(0, 2, 1, 3)


def run_network(net: DeployedNetwork, payloads: np.ndarray, backend: str = "lava",
                timeout_s: float | None = None, fast_models: bool = True, *,
                lanes: int | None = None, progress: bool = False, steps: int | None = None
                ) -> Activity:
    """Run `net` on payloads (N, T, C) (graded spike payloads, net.input.encode gives them).

    backend: "lava" | "lava-float" | "loihi2" | "emulator".
    timeout_s: bound on the whole Lava run (s); default default_timeout_s(steps, lanes).
    fast_models: use lava_runtime.fast_models for DelayDense/DelaySparse (identical results,
        much faster, and they drop their buffers at each layer's reset); False runs Lava's stock
        models (then no hidden neuron may spike without input and recurrent layers must fall
        silent in time, see stock_models_problem; other networks are refused).
    lanes: samples run side by side per Lava step (lava_runtime.lava_graph.lanes); None chooses them
        from the network size and memory (lanes.choose_lanes; 1 with stock models or
        backend "loihi2"). Results do not depend on it. Ignored by the emulator.
    steps: window steps recorded per sample (default T + latency).
    Returns an Activity. Raises ValueError/NetworkError before any work on bad input,
    LavaTimeoutError on timeout, LavaRunError if Lava fails.
    """
    validate_backend(backend)
    validate_network(net, backend)
    payloads = validate_payloads(net, payloads)
    if backend == "emulator":
        from deployed.emulator import emulate
        check_lanes(lanes)
        return emulate(net, payloads, steps=steps, progress=progress)
    lanes = resolve_lanes(net, payloads.shape[0], lanes, fast_models, backend)
    if backend == "loihi2":
        require_loihi2()
    if not fast_models:
        problem = stock_models_problem(net)
        if problem:
            raise NetworkError(problem)
    return _run_lava(net, payloads, backend, timeout_s, fast_models, lanes, progress, steps)


def stock_models_problem(net: DeployedNetwork) -> str | None:
    """Why Lava's stock delay models (which cannot drop their buffers) would not give this
    runtime's results on `net`, or None when they provably do: no hidden neuron may spike
    without input (validate.drains_between_samples of its feed-forward part), and a layer with
    recurrent synapses must
    fall silent in time: only inhibitory recurrent weights (<= 0; excitatory recurrence can keep
    a layer spiking for ever), du = 4095 and no bias that fires alone, and its last recurrent
    spike (after its last possible feed-forward input, T - 1 + sum_j<=i (max_delay_j + 1)) must
    arrive before the next window's reset step (window + start_step(i))."""
    feed_forward = dataclasses.replace(net, layers=[dataclasses.replace(layer, recurrent=None)
                                                    for layer in net.layers])
    if not drains_between_samples(feed_forward):
        return ("this network can spike without input (a hidden layer has du != 4095 or a "
                "bias that alone crosses threshold), so with Lava's stock delay models, which "
                "cannot drop their buffers, spikes a layer emits before its reset step (the "
                "previous sample's tail, or bias alone) would reach the next layer and the run "
                "would not equal the trained model; use fast_models=True")
    window = net.input.time_steps + net.padding_steps()
    last_spike = net.input.time_steps - 1  # last step the input sends
    for i, layer in enumerate(net.layers):
        last_spike += layer.max_delay + 1
        rec = layer.recurrent
        if rec is None or rec.n_synapses == 0:
            continue
        where = f"layer {i} ({layer.name!r})"
        nr = layer.neurons
        bias = fp.effective_bias(nr.bias_mant, nr.bias_exp)
        why = None
        if (rec.weight > 0).any():
            why = (f"has {int((rec.weight > 0).sum())} excitatory recurrent synapses, which can "
                   f"keep it spiking after its input ends")
        elif nr.du != 4095 or fp.bias_can_fire(nr.vth, bias, nr.dv).any():
            why = "can spike without input (du != 4095 or a bias that alone fires)"
        elif last_spike + 1 + rec.max_delay >= window + net.start_step(i):
            why = (f"can emit a recurrent spike at window step {last_spike} that arrives "
                   f"{rec.max_delay + 1} steps later, after the next window's reset step "
                   f"{window + net.start_step(i)}")
        if why:
            return (f"{where} {why}; Lava's stock delay models cannot drop the recurrent "
                    f"buffer at the layer's start, so that activity would reach the next "
                    f"sample and the run would not equal the emulator; use fast_models=True "
                    f"(no --stock-models)")
    return None


def _run_lava(net, payloads, backend, timeout_s, fast_models, lanes, progress, steps):
    n, T, _ = payloads.shape
    window = T + net.padding_steps()
    keep = T + net.latency if steps is None else int(steps)
    if not 1 <= keep <= window:
        raise ValueError(f"steps must be in 1..{window} (the sample window), got {keep}")
    rounds = -(-n // lanes)
    total = rounds * window
    timeout_s = default_timeout_s(total, lanes) if timeout_s is None else float(timeout_s)
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    job_dir = Path(tempfile.mkdtemp(prefix="delaysnn-lava-"))
    try:
        payload_path = job_dir / "payloads.npy"
        np.save(payload_path, lane_payloads(payloads, lanes))
        float_v = backend == "lava-float"
        job = {"net": net, "backend": backend, "fast_models": fast_models,
               "payload_path": str(payload_path), "out_dir": str(job_dir),
               "n_samples": n, "lanes": lanes, "window": window, "keep": keep,
               "total_steps": total, "chunk_steps": window * max(1, rounds // 50)}
        with open(job_dir / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        t0 = time.perf_counter()
        done = run_job(job_dir, timeout_s, progress_total=n if progress else None,
                       desc=f"lava ({backend}, {lanes} lane{'s' if lanes > 1 else ''})")
        seconds = time.perf_counter() - t0
        spikes = [np.load(job_dir / f"spikes_{i}.npy").astype(np.uint8)
                  for i in range(net.n_spiking)]
        v = np.load(job_dir / "readout_v.npy")
        readout_v = v.astype(np.float64) if float_v else v.astype(np.int64)
        run_s = max(done["run_seconds"], 1e-9)
        extra = {"steps": keep, "window": window, "total_steps": total, "lanes": lanes,
                 "fast_models": fast_models, "lava_run_seconds": done["run_seconds"],
                 "lava_startup_seconds": done["startup_seconds"],
                 "steps_per_second": (total - 1) / run_s,
                 # samples per second of Lava run time (first step, which compiles, excluded)
                 "samples_per_second": n * (total - 1) / total / run_s,
                 "n_processes": done["n_processes"], "shm_segments": done["shm_segments"]}
        return Activity(input_payload=payloads, spikes=spikes, readout_v=readout_v,
                        backend=backend, seconds=seconds, extra=extra)
    finally:
        cleanup_job_dir(job_dir)


# ---------------------------------------------------------------- worker side (imports Lava)

def run_config(backend: str, fast_models: bool):
    """The Lava RunConfig for a backend, with this runtime's process models."""
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    from lava_runtime.lava_graph.procs import processes as P
    tag = "floating_pt" if backend == "lava-float" else "fixed_pt"
    fixed = tag == "fixed_pt"
    models = {P.PayloadSource: P.PySourceFixed if fixed else P.PySourceFloat,
              P.Recorder: P.PyRecorderFixed if fixed else P.PyRecorderFloat,
              P.ReadoutLIF: P.PyReadoutLifFixed if fixed else P.PyReadoutLifFloat}
    if fast_models:
        from lava_runtime.lava_graph.procs.fast_models import FAST_MODELS
        models.update(FAST_MODELS[tag])
    if backend == "loihi2":
        require_loihi2()
        return Loihi2HwCfg(exception_proc_model_map=models)
    return Loihi2SimCfg(select_tag=tag, exception_proc_model_map=models)


def float_layer_params(layer: ConnectionLayer) -> dict:
    """Floating-point equivalents (same voltage units as fixed_pt): weights * 2**weight_exp *
    2**6 (the layer's weight_exp; a connection process with its own, ConnectionLayer
    .processes, scales by that, _connection), bias_mant * 2**bias_exp, du' = (du + 1)/4096,
    dv' = dv/4096, vth' = vth * 2**6."""
    nr = layer.neurons
    return {"w_scale": 2.0 ** layer.weight_exp * 64.0,
            "bias": np.asarray(nr.bias_mant, dtype=np.float64) * 2.0 ** nr.bias_exp,
            "du": (nr.du + 1) / 4096.0, "dv": nr.dv / 4096.0, "vth": float(nr.vth) * 64.0}


def lif_reset_offset(net: DeployedNetwork, layer_index: int) -> int:
    """LIFReset reset_offset of layer `layer_index` (0-based): Lava resets when
    time_step % W == offset, time_step = window step + 1, and the layer starts at window step
    net.start_step(i)."""
    return net.start_step(layer_index) + 1


def buffer_reset_offset(net: DeployedNetwork, layer_index: int) -> int:
    """buffer_reset_offset of the fast delay models feeding layer `layer_index`: they drop
    their buffer at the start of the window step the presynaptic layer starts at
    (net.start_step(i - 1); the input starts at 0), i.e. Lava step that + 1 mod W, and keep
    what they receive from that step on."""
    return (net.start_step(layer_index - 1) if layer_index > 0 else 0) + 1


def recurrent_slots(layer: ConnectionLayer) -> list[tuple[np.ndarray, np.ndarray]]:
    """The layer's recurrent synapses as (weight, delay) matrices of shape (n_out, n_out), at
    most one synapse per (post, pre) pair each (one Lava connection process per slot), split
    exactly as ConnectionLayer.slots() splits feed-forward synapses; [] without recurrence."""
    rec = layer.recurrent
    if rec is None or rec.n_synapses == 0:
        return []
    return rec.slots(layer.n_out)


def _connection(layer: ConnectionLayer, w: np.ndarray, d: np.ndarray, fixed: bool,
                window: int, buffer_offset: int, lanes: int = 1, recurrent: bool = False,
                weight_exp: int | None = None):
    """One Lava connection process for one of layer.processes() (w, d of shape (n_out, n_in),
    weight_exp: that process's, default the layer's): DelayDense or DelaySparse for one lane,
    their Laned versions (ports (lanes, n)) for more. recurrent: a slot of layer.recurrent
    (binary spikes, the recurrent weight_exp and num_weight_bits)."""
    import scipy.sparse as sp
    from lava.proc.dense.process import DelayDense
    from lava.proc.sparse.process import DelaySparse

    from lava_runtime.lava_graph.procs.processes import LanedDelayDense, LanedDelaySparse

    syn: ConnectionLayer | RecurrentSynapses = layer
    if recurrent:
        assert layer.recurrent is not None
        syn = layer.recurrent
    max_delay = int(d[w != 0].max()) if (w != 0).any() else 0
    kwargs = dict(num_message_bits=0 if recurrent else layer.input_message_bits,
                  max_delay=max_delay, buffer_reset_interval=window,
                  buffer_reset_offset=buffer_offset)
    exp = syn.weight_exp if weight_exp is None else int(weight_exp)
    weights: np.ndarray
    if fixed:
        weights = w.astype(np.int64)
        kwargs.update(weight_exp=exp, num_weight_bits=syn.num_weight_bits)
    else:
        weights = w.astype(np.float64) * (2.0 ** exp * 64.0)
    delays = np.where(w != 0, d, 0).astype(np.int64)
    density = np.count_nonzero(w) / max(1, w.size)
    if lanes > 1:
        kwargs["lanes"] = lanes
    if density < SPARSE_BELOW:
        cls = LanedDelaySparse if lanes > 1 else DelaySparse
        proc = cls(weights=sp.csr_matrix(weights), delays=sp.csr_matrix(delays), **kwargs)
    else:
        cls = LanedDelayDense if lanes > 1 else DelayDense
        proc = cls(weights=weights, delays=delays, **kwargs)
    return proc


def build_graph(job: dict) -> dict:
    """Build the processes for a job (see _run_lava); returns {"head": a process, ...}."""
    from lava.proc.lif.process import LIFReset

    from lava_runtime.lava_graph.procs import processes as P
    net: DeployedNetwork = job["net"]
    fixed = job["backend"] != "lava-float"
    window, keep, n = job["window"], job["keep"], job["n_samples"]
    lanes = int(job.get("lanes", 1))
    out_dir = Path(job["out_dir"])
    procs = []
    src = P.PayloadSource(path=job["payload_path"], n_channels=net.input.n_channels,
                          time_steps=net.input.time_steps, window=window, lanes=lanes)
    procs.append(src)
    prev_out = src.s_out
    for li, layer in enumerate(net.layers):
        nr = layer.neurons
        shape = lane_shape(lanes, nr.n)  # every lane has the same parameters
        if fixed:
            lif_kw = dict(du=nr.du, dv=nr.dv, vth=nr.vth,
                          bias_mant=np.broadcast_to(np.asarray(nr.bias_mant, dtype=np.int64),
                                                    shape).copy(),
                          bias_exp=np.full(shape, nr.bias_exp, dtype=np.int64))
        else:
            fpp = float_layer_params(layer)
            lif_kw = dict(du=fpp["du"], dv=fpp["dv"], vth=fpp["vth"],
                          bias_mant=np.broadcast_to(fpp["bias"], shape).copy(),
                          bias_exp=np.zeros(shape))
        last = li == len(net.layers) - 1
        first = net.start_step(li)
        common = dict(shape=shape, reset_interval=window, reset_offset=lif_reset_offset(net, li),
                      name=f"{layer.name}_lif", **lif_kw)
        lif = P.ReadoutLIF(spiking=nr.spiking, **common) if last else LIFReset(**common)
        procs.append(lif)
        for w, d, exp in layer.processes():
            conn = _connection(layer, w, d, fixed, window, buffer_reset_offset(net, li), lanes,
                               weight_exp=exp)
            prev_out.connect(conn.s_in)
            conn.a_out.connect(lif.a_in)
            procs.append(conn)
        for w, d in recurrent_slots(layer):  # own spikes back, buffer dropped at own start
            conn = _connection(layer, w, d, fixed, window, lif_reset_offset(net, li), lanes,
                               recurrent=True)
            lif.s_out.connect(conn.s_in)
            conn.a_out.connect(lif.a_in)
            procs.append(conn)
        if nr.spiking:
            path = out_dir / f"spikes_{li}.npy"
            rec = P.Recorder(n=nr.n, path=str(path), n_samples=n, window=window, keep=keep,
                             dtype="uint8", first_step=first, lanes=lanes)
            lif.s_out.connect(rec.a_in)
            procs.append(rec)
        if last:
            path = out_dir / "readout_v.npy"
            rec = P.Recorder(n=nr.n, path=str(path), n_samples=n, window=window, keep=keep,
                             dtype="int64" if fixed else "float64", first_step=first,
                             lanes=lanes)
            lif.v_out.connect(rec.a_in)
            procs.append(rec)
        prev_out = lif.s_out
    return {"head": src, "n_processes": len(procs), "processes": procs}


__all__ = ["run_network", "run_config", "build_graph", "recurrent_slots", "stock_models_problem",
           "BACKENDS", "LavaRunError", "loihi2_available"]
