"""lava-dl's netx run the way its users run it, `Network(net_config=path, input_message_bits=b)`
with no reset_interval, in Lava (Loihi2SimCfg, fixed_pt, Lava's stock models), inside this
project's sandbox (a child process with a timeout, always cleaned up).

`run_netx_plain(path, payload, steps, input_message_bits, timeout_s)` runs one sample from a fresh
network: input step t is sent at Lava step t + 1 (window step t) by Lava's RingBuffer, every
netx layer's spikes are recorded by this project's Recorder. The child is
`python -m helpers.netx_plain JOB_DIR` (lava_runtime.lava_graph.worker with `build_netx`);
callers point lava_runtime.lava_graph.sandbox.WORKER_MODULE here and put tests/ on PYTHONPATH
(tests/test_from_netx.py's fixture does both).
"""
from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

WORKER = "helpers.netx_plain"


def build_netx(job: dict) -> dict:
    """The worker's graph: RingBuffer -> netx Network -> a Recorder per netx layer's spikes."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.proc.io.source import RingBuffer

    from lava_runtime.lava_graph.procs.processes import Recorder

    steps = job["window"]
    nx = Network(net_config=job["netx_path"], input_message_bits=job["input_message_bits"])
    payload = np.load(job["payload_path"])  # (T, C)
    data = np.zeros((payload.shape[1], steps), dtype=np.int32)
    data[:, :payload.shape[0]] = payload.T
    src = RingBuffer(data=data)
    src.s_out.connect(nx.inp)
    procs = [src, nx]
    for i, layer in enumerate(nx.layers):
        rec = Recorder(n=int(np.prod(layer.neuron.s_out.shape)),
                       path=str(Path(job["out_dir"]) / f"netx_spikes_{i}.npy"), n_samples=1,
                       window=steps, keep=steps, dtype="uint8")
        layer.neuron.s_out.connect(rec.a_in)
        procs.append(rec)
    return {"head": src, "n_processes": len(procs), "processes": procs}


def run_netx_plain(path, payload: np.ndarray, steps: int, input_message_bits: int,
                   timeout_s: float = 180.0) -> list[np.ndarray]:
    """One sample (payload (T, C)) through netx for `steps` steps: per netx layer, its spikes
    (steps, n) uint8, row k = window step k (Lava step k + 1)."""
    from lava_runtime.lava_graph.sandbox import cleanup_job_dir, run_job

    job_dir = Path(tempfile.mkdtemp(prefix="delaysnn-netx-"))
    try:
        np.save(job_dir / "payload.npy", np.asarray(payload, dtype=np.int32))
        job = {"netx_path": str(path), "payload_path": str(job_dir / "payload.npy"),
               "input_message_bits": int(input_message_bits), "out_dir": str(job_dir),
               "backend": "lava", "fast_models": False, "window": int(steps), "lanes": 1,
               "n_samples": 1, "total_steps": int(steps), "chunk_steps": int(steps)}
        with open(job_dir / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        run_job(job_dir, timeout_s)
        out, i = [], 0
        while (job_dir / f"netx_spikes_{i}.npy").exists():
            out.append(np.load(job_dir / f"netx_spikes_{i}.npy")[0])
            i += 1
        return out
    finally:
        cleanup_job_dir(job_dir)


if __name__ == "__main__":
    from lava_runtime.lava_graph.worker import main

    sys.exit(main(sys.argv[1], build=build_netx))
