"""DistributedDataParallel on CPU (gloo, 2 processes via torchrun) equals one process with the
same global batch: one optimisation step, rewiring included.

Two processes cannot be bit-identical to one: each sums the gradient over its half of the batch
and gloo adds the halves, a different float order (about 1e-6 relative here). Over several steps
such a difference can flip a discrete choice (a spike at threshold, a rewiring decision) and the
runs part for good, by an amount that depends on the machine's kernels. So the runs are compared
after one step (the whole training split as one global batch), before any such choice can
diverge, with both sides on one thread: the continuous state to 1e-4, the rewired masks exactly,
and the gradient itself through Adam's first moment (0.1 x gradient after one step), which tells
an averaged gradient from a summed one (2x) or an unsynchronised one (this rank's half only).
Two networks: dcls (dense kernels) and structure on the sparse path, whose RigL candidate
gradient (computed on this first step, a regrowth step) is averaged over the ranks by hand.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trainer

REPO = Path(__file__).resolve().parents[1]
# 160 synthetic samples: 144 train (one step of the whole split, 72 per rank), 16 validation
CFG = {"dataset": "synthetic", "method": "dcls", "sparsity": 0.5, "hidden": [12],
       "kernel_size": 7, "epochs": 1, "batch_size": 160, "lr": 0.05, "max_lr": 0.1,
       "num_threads": 1, "data_options": {"n_train": 160, "n_test": 40}}


def _toml(cfg: dict) -> str:
    top = [f"{k} = {json.dumps(v)}" for k, v in cfg.items() if k != "data_options"]
    return "\n".join(top + ["[data_options]"]
                     + [f"{k} = {v}" for k, v in cfg["data_options"].items()]) + "\n"


def _adam_moments(state: dict) -> dict[str, torch.Tensor]:
    """Adam's first moments of every parameter, by optimiser and parameter index."""
    return {f"{opt}/{i}": s["exp_avg"] for opt in ("w", "p") if state["optimizers"][opt]
            for i, s in state["optimizers"][opt]["state"].items()}


@pytest.mark.parametrize("method,sparsity", [("dcls", 0.5), ("structure", 0.9)])
def test_two_process_gloo_equals_single_process_after_one_step(tmp_path, method, sparsity):
    cfg = {**CFG, "method": method, "sparsity": sparsity}
    single = trainer.train(cfg, out=tmp_path / "single", progress=False, device="cpu")
    cfg_file = tmp_path / "cfg.toml"
    cfg_file.write_text(_toml(cfg))   # num_threads = 1 there too: one thread per rank
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "trainer", "train", "--config", str(cfg_file), "--device", "cpu",
         "--out", str(tmp_path / "ddp"), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    (a,), (b,) = ddp["history"], single.metrics["history"]
    assert abs(a["loss"] - b["loss"]) < 1e-5 * abs(b["loss"]), (a["loss"], b["loss"])
    assert abs(a["train_accuracy"] - b["train_accuracy"]) <= 1 / 144 + 1e-9   # an argmax tie
    assert ddp["connections"] == single.metrics["connections"]

    s_state = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    d_state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    s_m, d_m = _adam_moments(s_state), _adam_moments(d_state)
    assert s_m.keys() == d_m.keys() and len(s_m) > 0
    s_flat = torch.cat([s_m[k].flatten().double() for k in sorted(s_m)])
    d_flat = torch.cat([d_m[k].flatten().double() for k in sorted(s_m)])
    # the DDP gradient as a multiple of the single-process one: 1 when averaged over the two
    # ranks, 2 when summed; an unsynchronised rank leaves a residual of the order of the norm
    scale = float(d_flat @ s_flat / (s_flat @ s_flat))
    assert abs(scale - 1) < 1e-4, f"DDP gradient is {scale:.4f} x the single-process gradient"
    residual = float((d_flat - scale * s_flat).norm() / s_flat.norm())
    assert residual < 1e-4, f"DDP gradient differs from the single-process one by {residual:.1e}"

    s, d = s_state["model_state"], d_state["model_state"]
    assert s.keys() == d.keys()
    for k in s:   # weights, positions, BatchNorm statistics over all ranks' samples, masks
        if s[k].dtype == torch.bool:
            assert torch.equal(s[k], d[k]), f"{k}: rewiring chose other connections"
        else:
            # one step moves weights by about lr = 0.05; float order: < 1e-5 here. DCLS
            # positions take Adam's first step lr_positions * g / (|g| + eps): where a position's
            # gradient is near eps (1e-8) the float order moves it by a sizeable part of that
            # step (0.003 of 0.1 seen on one machine with conv1d), so they get a tolerance; the
            # gradient checks above still tell averaged from summed or unsynchronised gradients. The
            # dense path's readout (trainer/delay_conv.py: one GEMM and shifted adds) sums in
            # another order than conv1d did: 0.020 seen here, so half a step is allowed.
            atol = 5e-2 if k.endswith("dcls.P") else 1e-4
            diff = float((s[k].float() - d[k].float()).abs().max())
            assert torch.allclose(s[k].float(), d[k].float(), rtol=1e-4, atol=atol), (k, diff)
