"""The Lava process graph of a DeployedNetwork, and run_network(): one call, many samples.

Graph (one Lava run for a whole evaluation):

    PayloadSource --(graded, num_message_bits = layer.input_message_bits)--> DelayDense|DelaySparse
        (one connection process per slot of the layer, all into the same LIF a_in: Lava sums
        them) --> LIFReset (hidden, spikes) --> ... --> ReadoutLIF (non-spiking, v out)
    Recorder per hidden LIF (spikes) and one for the readout voltage.

Samples follow each other in windows of W = T + net.padding_steps() steps: sample i's input is
sent at Lava steps i*W + 1 .. i*W + T (window steps 0..T-1), then zeros. Each connection layer
adds one step of latency, so layer i (0-based) first receives input at window step i + 1; there
its LIF resets u = v = 0 (LIFReset, reset_interval = W, reset_offset = i + 2: Lava's time_step
starts at 1 and the reset happens before the step's input is integrated), so every layer runs
on the trained model's aligned time axis from zero state, its bias acting from its own step 0
on (lava_runtime.emulator states the arithmetic). The fast delay models of layer i drop their
buffers at window step i (buffer_reset_offset = i + 1), before receiving that step's input:
what layer i - 1 emitted before its own reset (the previous window's tail, or bias-driven
spikes) never reaches layer i. Each window is thus a fresh network; the first T + latency steps
of each window are recorded (the Activity convention), layer i's values before its reset step
as 0. Lava's stock delay models cannot drop their buffers: with them (fast_models=False) the
network must drain within its padding (validate.drains_between_samples).

Backends: "lava" (Loihi2SimCfg, fixed_pt, bit-accurate; default), "lava-float" (floating_pt:
weights, bias and threshold converted to the same voltage units, decays as fractions),
"loihi2" (Loihi2HwCfg, needs Intel's lava-loihi package), "emulator" (lava_runtime.emulator,
no Lava at all).

The Lava run itself happens in a child process (lava_runtime.sandbox): bounded by a timeout,
always stopped, no worker process or shared memory left behind. This module imports Lava only
inside build_graph/run_config, which run in that child.
"""
from __future__ import annotations

import importlib.util
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

from export.deployed import ConnectionLayer, DeployedNetwork
from lava_runtime.activity import Activity
from lava_runtime.emulator import start_step
from lava_runtime.sandbox import LavaRunError, cleanup_job_dir, run_job
from lava_runtime.validate import (BACKENDS, NetworkError, drains_between_samples,
                                   validate_backend, validate_network, validate_payloads)

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


def default_timeout_s(total_steps: int) -> float:
    """Generous default bound for one Lava run (s): 120 s start-up + 0.1 s per step."""
    return 120.0 + 0.1 * total_steps


def run_network(net: DeployedNetwork, payloads: np.ndarray, backend: str = "lava",
                timeout_s: float | None = None, fast_models: bool = True, *,
                progress: bool = False, steps: int | None = None,
                _fault: tuple[str, int] | None = None) -> Activity:
    """Run `net` on payloads (N, T, C) (graded spike payloads, net.input.encode gives them).

    backend: "lava" | "lava-float" | "loihi2" | "emulator".
    timeout_s: bound on the whole Lava run (s); default default_timeout_s(total steps).
    fast_models: use lava_runtime.fast_models for DelayDense/DelaySparse (identical results,
        much faster, and they drop their buffers at each layer's reset); False runs Lava's stock
        models (then no hidden neuron may spike without input, see
        validate.drains_between_samples; other networks are refused).
    steps: window steps recorded per sample (default T + latency).
    Returns an Activity. Raises ValueError/NetworkError before any work on bad input,
    LavaTimeoutError on timeout, LavaRunError if Lava fails.
    """
    validate_backend(backend)
    validate_network(net, backend)
    payloads = validate_payloads(net, payloads)
    if backend == "emulator":
        from lava_runtime.emulator import emulate
        return emulate(net, payloads, steps=steps, progress=progress)
    if backend == "loihi2":
        require_loihi2()
    if not fast_models and not drains_between_samples(net):
        raise NetworkError(
            "this network can spike without input (a hidden layer has du != 4095 or a bias "
            "that alone crosses threshold), so with Lava's stock delay models, which cannot "
            "drop their buffers, spikes a layer emits before its reset step (the previous "
            "sample's tail, or bias alone) would reach the next layer and the run would not "
            "equal the trained model; use fast_models=True")
    return _run_lava(net, payloads, backend, timeout_s, fast_models, progress, steps, _fault)


def run_lava(net: DeployedNetwork, payloads: np.ndarray, backend: str = "lava",
             **kwargs) -> Activity:
    """run_network restricted to the Lava backends ("lava", "lava-float", "loihi2")."""
    if backend not in ("lava", "lava-float", "loihi2"):
        raise ValueError(f"run_lava runs the Lava backends lava, lava-float, loihi2; got "
                         f"{backend!r}")
    return run_network(net, payloads, backend, **kwargs)


def _run_lava(net, payloads, backend, timeout_s, fast_models, progress, steps, fault):
    n, T, _ = payloads.shape
    window = T + net.padding_steps()
    keep = T + net.latency if steps is None else int(steps)
    if not 1 <= keep <= window:
        raise ValueError(f"steps must be in 1..{window} (the sample window), got {keep}")
    total = n * window
    timeout_s = default_timeout_s(total) if timeout_s is None else float(timeout_s)
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    job_dir = Path(tempfile.mkdtemp(prefix="delaysnn-lava-"))
    try:
        payload_path = job_dir / "payloads.npy"
        np.save(payload_path, payloads.astype(np.int32))
        float_v = backend == "lava-float"
        job = {"net": net, "backend": backend, "fast_models": fast_models,
               "payload_path": str(payload_path), "out_dir": str(job_dir),
               "n_samples": n, "window": window, "keep": keep, "total_steps": total,
               "chunk_steps": max(window, min(total, window * max(1, n // 50))),
               "fault": fault}
        with open(job_dir / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        t0 = time.perf_counter()
        done = run_job(job_dir, timeout_s, progress_total=total if progress else None,
                       desc=f"lava ({backend})")
        seconds = time.perf_counter() - t0
        spikes = [np.load(job_dir / f"spikes_{i}.npy").astype(np.uint8)
                  for i in range(len(net.layers) - 1)]
        v = np.load(job_dir / "readout_v.npy")
        readout_v = v.astype(np.float64) if float_v else v.astype(np.int64)
        extra = {"steps": keep, "window": window, "total_steps": total,
                 "fast_models": fast_models, "lava_run_seconds": done["run_seconds"],
                 "lava_startup_seconds": done["startup_seconds"],
                 "steps_per_second": (total - 1) / max(done["run_seconds"], 1e-9),
                 "n_processes": done["n_processes"], "shm_segments": done["shm_segments"]}
        return Activity(input_payload=payloads, spikes=spikes, readout_v=readout_v,
                        backend=backend, seconds=seconds, extra=extra)
    finally:
        cleanup_job_dir(job_dir)


# ---------------------------------------------------------------- worker side (imports Lava)

def run_config(backend: str, fast_models: bool):
    """The Lava RunConfig for a backend, with this runtime's process models."""
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    from lava_runtime.lava_procs import processes as P
    tag = "floating_pt" if backend == "lava-float" else "fixed_pt"
    fixed = tag == "fixed_pt"
    models = {P.PayloadSource: P.PySourceFixed if fixed else P.PySourceFloat,
              P.Recorder: P.PyRecorderFixed if fixed else P.PyRecorderFloat,
              P.ReadoutLIF: P.PyReadoutLifFixed if fixed else P.PyReadoutLifFloat}
    if fast_models:
        from lava_runtime.lava_procs.fast_models import FAST_MODELS
        models.update(FAST_MODELS[tag])
    if backend == "loihi2":
        require_loihi2()
        return Loihi2HwCfg(exception_proc_model_map=models)
    return Loihi2SimCfg(select_tag=tag, exception_proc_model_map=models)


def float_layer_params(layer: ConnectionLayer) -> dict:
    """Floating-point equivalents (same voltage units as fixed_pt): weights * 2**weight_exp *
    2**6, bias_mant * 2**bias_exp, du' = (du + 1)/4096, dv' = dv/4096, vth' = vth * 2**6."""
    nr = layer.neurons
    return {"w_scale": 2.0 ** layer.weight_exp * 64.0,
            "bias": np.asarray(nr.bias_mant, dtype=np.float64) * 2.0 ** nr.bias_exp,
            "du": (nr.du + 1) / 4096.0, "dv": nr.dv / 4096.0, "vth": float(nr.vth) * 64.0}


def lif_reset_offset(layer_index: int) -> int:
    """LIFReset reset_offset of layer `layer_index` (0-based): Lava resets when
    time_step % W == offset, time_step = window step + 1, and the layer starts at window step
    emulator.start_step(i) = i + 1."""
    return start_step(layer_index) + 1


def buffer_reset_offset(layer_index: int) -> int:
    """buffer_reset_offset of the fast delay models feeding layer `layer_index`: they drop
    their buffer at the start of window step i (Lava step i + 1 mod W), the step the
    presynaptic layer starts at (start_step(i - 1) = i; the input starts at 0), and keep what
    they receive from that step on."""
    return layer_index + 1


def _connection(layer: ConnectionLayer, w: np.ndarray, d: np.ndarray, fixed: bool,
                window: int, layer_index: int):
    """One Lava connection process for one slot (w, d of shape (n_out, n_in))."""
    import scipy.sparse as sp
    from lava.proc.dense.process import DelayDense
    from lava.proc.sparse.process import DelaySparse

    max_delay = int(d[w != 0].max()) if (w != 0).any() else 0
    kwargs = dict(num_message_bits=layer.input_message_bits, max_delay=max_delay,
                  buffer_reset_interval=window,
                  buffer_reset_offset=buffer_reset_offset(layer_index))
    if fixed:
        weights = w.astype(np.int64)
        kwargs.update(weight_exp=layer.weight_exp, num_weight_bits=layer.num_weight_bits)
    else:
        weights = w.astype(np.float64) * float_layer_params(layer)["w_scale"]
    delays = np.where(w != 0, d, 0).astype(np.int64)
    density = np.count_nonzero(w) / max(1, w.size)
    if density < SPARSE_BELOW:
        proc = DelaySparse(weights=sp.csr_matrix(weights), delays=sp.csr_matrix(delays),
                           **kwargs)
    else:
        proc = DelayDense(weights=weights, delays=delays, **kwargs)
    return proc


def build_graph(job: dict) -> dict:
    """Build the processes for a job (see _run_lava); returns {"head": a process, ...}."""
    from lava.proc.lif.process import LIFReset

    from lava_runtime.lava_procs import processes as P
    net: DeployedNetwork = job["net"]
    fixed = job["backend"] != "lava-float"
    window, keep, n = job["window"], job["keep"], job["n_samples"]
    out_dir = Path(job["out_dir"])
    fault = job.get("fault")
    procs = []
    src = P.PayloadSource(path=job["payload_path"], n_channels=net.input.n_channels,
                          n_samples=n, time_steps=net.input.time_steps, window=window)
    procs.append(src)
    prev_out = src.s_out
    for li, layer in enumerate(net.layers):
        nr = layer.neurons
        if fixed:
            lif_kw = dict(du=nr.du, dv=nr.dv, vth=nr.vth,
                          bias_mant=np.asarray(nr.bias_mant, dtype=np.int64),
                          bias_exp=np.full(nr.n, nr.bias_exp, dtype=np.int64))
        else:
            fpp = float_layer_params(layer)
            lif_kw = dict(du=fpp["du"], dv=fpp["dv"], vth=fpp["vth"], bias_mant=fpp["bias"],
                          bias_exp=np.zeros(nr.n))
        cls = LIFReset if nr.spiking else P.ReadoutLIF
        lif = cls(shape=(nr.n,), reset_interval=window, reset_offset=lif_reset_offset(li),
                  name=f"{layer.name}_lif", **lif_kw)
        procs.append(lif)
        for w, d in layer.slots():
            conn = _connection(layer, w, d, fixed, window, li)
            prev_out.connect(conn.s_in)
            conn.a_out.connect(lif.a_in)
            procs.append(conn)
        if nr.spiking:
            path = out_dir / f"spikes_{li}.npy"
            rec = P.Recorder(n=nr.n, path=str(path), n_samples=n, window=window, keep=keep,
                             dtype="uint8", first_step=start_step(li), **_fault_kwargs(fault))
            fault = None  # inject at most once
            lif.s_out.connect(rec.a_in)
        else:
            path = out_dir / "readout_v.npy"
            rec = P.Recorder(n=nr.n, path=str(path), n_samples=n, window=window, keep=keep,
                             dtype="int64" if fixed else "float64", first_step=start_step(li),
                             **_fault_kwargs(fault))
            lif.v_out.connect(rec.a_in)
        procs.append(rec)
        prev_out = lif.s_out
    return {"head": src, "n_processes": len(procs), "processes": procs}


def _fault_kwargs(fault):
    return {} if not fault else {"fault": fault[0], "fault_step": int(fault[1])}


__all__ = ["run_network", "run_lava", "run_config", "build_graph", "BACKENDS", "LavaRunError",
           "loihi2_available"]
