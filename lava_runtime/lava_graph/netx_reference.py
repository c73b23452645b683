"""lava-dl's own runtime as the reference for a network brought in from lava-dl: netx's
`lava.lib.dl.netx.hdf5.Network(net_config=NET.net, input_message_bits=b)` run in Lava
(Loihi2SimCfg, fixed_pt, Lava's stock models: how lava-dl users run it), inside this project's
sandbox (a child process with a timeout, always cleaned up; sandbox.run_job).

    run = run_netx(path, payloads, steps, input_message_bits, timeout_s=None)
    run.spikes          # per netx layer, (N, steps, n) uint8, row k = window step k (Lava step k+1)
    run.seconds         # wall seconds of the whole job as its caller sees it
    run.startup_seconds, run.run_seconds   # inside the child: building and compiling vs. stepping

Each sample runs on a freshly built netx network from zero state (netx without reset_interval
carries state from one sample to the next, so this is how it gives per-sample results), all
samples in one child process: input step t is sent at Lava step t + 1 by Lava's RingBuffer,
every layer's spikes recorded by this project's Recorder. export.from_netx converts the same
file for the emulator and this project's Lava graph (docs/design.md section 8), whose spikes
must equal these.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORKER = "lava_runtime.lava_graph.netx_reference"


@dataclass
class NetxRun:
    """Spikes of every netx layer on N samples, and where the time went (s)."""

    spikes: list[np.ndarray]  # per layer: (N, steps, n) uint8
    seconds: float  # wall time of the whole job, child start-up and Lava import included
    startup_seconds: float  # sum over samples: build the netx network, compile, first step
    run_seconds: float  # sum over samples: the remaining steps


def run_netx(path, payloads: np.ndarray, steps: int, input_message_bits: int = 0,
             timeout_s: float | None = None, progress: bool = False) -> NetxRun:
    """Run payloads (N, T, C) int through netx, one fresh network per sample, `steps` Lava
    steps each (T input steps, zeros after). timeout_s: bound on the whole job (default 120 s
    plus 10 s per sample plus 0.1 s per step). Raises LavaRunError / LavaTimeoutError."""
    from lava_runtime.lava_graph.sandbox import cleanup_job_dir, run_job

    p = np.asarray(payloads)
    if p.ndim != 3 or not np.issubdtype(p.dtype, np.integer) or p.shape[1] > steps:
        raise ValueError(f"payloads must be integers (N, T, C) with T <= steps = {steps}, got "
                         f"{p.dtype} {p.shape}")
    n = p.shape[0]
    if timeout_s is None:
        timeout_s = 120.0 + n * (10.0 + 0.1 * steps)
    job_dir = Path(tempfile.mkdtemp(prefix="delaysnn-netx-"))
    try:
        np.save(job_dir / "payloads.npy", p.astype(np.int32))
        job = {"netx_path": str(Path(path).resolve()), "input_message_bits":
               int(input_message_bits), "steps": int(steps), "n_samples": n}
        with open(job_dir / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        t0 = time.perf_counter()
        done = run_job(job_dir, timeout_s, progress_total=n if progress else None,
                       desc="netx in Lava", worker=WORKER)
        seconds = time.perf_counter() - t0
        spikes = [np.load(job_dir / f"spikes_{i}.npy") for i in range(done["n_layers"])]
        return NetxRun(spikes, seconds, done["startup_seconds"], done["run_seconds"])
    finally:
        cleanup_job_dir(job_dir)


def _one_sample(job: dict, payload: np.ndarray, out_dir: Path) -> tuple[list, float, float]:
    """One sample on a fresh netx network: (spikes per layer (steps, n), startup s, run s)."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer

    from lava_runtime.lava_graph.graph import run_config
    from lava_runtime.lava_graph.procs.processes import Recorder

    t0 = time.perf_counter()
    steps = job["steps"]
    nx = Network(net_config=job["netx_path"], input_message_bits=job["input_message_bits"])
    data = np.zeros((payload.shape[1], steps), dtype=np.int32)
    data[:, :payload.shape[0]] = payload.T
    src = RingBuffer(data=data)
    src.s_out.connect(nx.inp)
    paths = []
    for i, layer in enumerate(nx.layers):
        paths.append(str(out_dir / f"sample_{i}.npy"))
        rec = Recorder(n=int(np.prod(layer.neuron.s_out.shape)), path=paths[-1], n_samples=1,
                       window=steps, keep=steps, dtype="uint8")
        layer.neuron.s_out.connect(rec.a_in)
    cfg = run_config("lava", fast_models=False)
    src.run(condition=RunSteps(num_steps=1), run_cfg=cfg)  # compiles and starts the workers
    t1 = time.perf_counter()
    if steps > 1:
        src.run(condition=RunSteps(num_steps=steps - 1), run_cfg=cfg)
    t2 = time.perf_counter()
    src.stop()
    return [np.load(p)[0] for p in paths], t1 - t0, t2 - t1


def main(job_dir: str | Path) -> int:
    """The child: every sample of JOB_DIR/job.pkl through netx; spikes_<layer>.npy and
    done.json ({n_layers, startup_seconds, run_seconds}) into JOB_DIR, progress after each."""
    from lava_runtime.lava_graph.worker import _name_shared_memory

    job_dir = Path(job_dir)
    try:
        prefix = os.environ.get("DELAYSNN_SHM_PREFIX", "")
        if prefix:
            _name_shared_memory(prefix)
        with open(job_dir / "job.pkl", "rb") as f:
            job = pickle.load(f)
        payloads = np.load(job_dir / "payloads.npy")
        out: list[list[np.ndarray]] = []
        startup = run = 0.0
        for k, payload in enumerate(payloads):
            spikes, s, r = _one_sample(job, payload, job_dir)
            out.append(spikes)
            startup, run = startup + s, run + r
            (job_dir / "progress").write_text(str(k + 1))
        for i in range(len(out[0])):
            np.save(job_dir / f"spikes_{i}.npy", np.stack([o[i] for o in out]))
        tmp = job_dir / "done.json.tmp"
        tmp.write_text(json.dumps({"n_layers": len(out[0]), "startup_seconds": startup,
                                   "run_seconds": run}))
        os.replace(tmp, job_dir / "done.json")
        return 0
    except BaseException:
        (job_dir / "error.txt").write_text(traceback.format_exc())
        sys.stdout.flush()
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
