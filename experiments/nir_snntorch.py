"""Bring your own network, measured: an snnTorch network trained on a dataset, exported with
snnTorch's own NIR export, imported by export.from_nir, quantized, run on Lava and budgeted.

    python -m experiments.nir_snntorch --dataset fsdd --epochs 4 --out runs/nir_snntorch \
        --json docs/results/nir_snntorch_fsdd.json

Network (snnTorch): Linear(C, hidden) -> Leaky(beta 0.875, threshold 1, reset to zero, as NIR's
LIF) -> Linear(hidden, classes) -> Leaky(beta 0.875, no reset, threshold never reached: the
readout, imported with lif_readout). Loss: negative log of the mean over steps of softmax(readout
voltage), so training optimises this project's prediction rule (argmax_c sum_t softmax(v_t)_c).
snnTorch's exporter writes time constants for dt = 0.1 ms, so the import uses dt_ms = 0.1
(one step is still one 10 ms feature frame). Accuracies: snnTorch's own simulation, the imported
float model (export.float_reference) and the quantized network (bit-exact emulator) on the test
split; Lava (fixed_pt CPU simulation) against the emulator on `--limit` test samples; the
Loihi 2 budget from the emulator's activity on the test split. Needs snntorch and nirtorch (the
test extra). Seeded: the same arguments give the same numbers.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

BETA = 0.875  # exact 12-bit decay: dv = 512


def build_snntorch(n_in: int, n_hidden: int, n_out: int, input_gain: float = 1.0):
    """input_gain multiplies the first Linear's initial weights (features of small magnitude,
    such as FSDD's log-Mel energies below 0.1, otherwise never reach the threshold)."""
    import snntorch as snn
    import torch

    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, n_hidden),
        snn.Leaky(beta=torch.full((n_hidden,), BETA), threshold=torch.ones(n_hidden),
                  init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(n_hidden, n_out),
        snn.Leaky(beta=torch.full((n_out,), BETA), threshold=torch.full((n_out,), 1e9),
                  init_hidden=True, output=True, reset_mechanism="none"))
    with torch.no_grad():
        net[0].weight *= input_gain  # type: ignore[operator, assignment]
    return net


def run_snntorch(net, x):
    """x (N, T, C) tensor -> readout voltage (N, T, K), snnTorch's own simulation."""
    import torch
    from snntorch import utils

    utils.reset(net)
    out = []
    for t in range(x.shape[1]):
        _, mem = net(x[:, t])
        out.append(mem)
    return torch.stack(out, 1)


def train(net, x, y, *, epochs: int, batch_size: int, lr: float, seed: int, log=print):
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        total, t0 = 0.0, time.time()
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            v = run_snntorch(net, x[idx])
            p = torch.softmax(v, -1).mean(1)
            loss = torch.nn.functional.nll_loss(torch.log(p + 1e-9), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log(f"epoch {ep + 1}/{epochs}: loss {total / len(x):.4f} ({time.time() - t0:.0f} s)")


def measure(dataset: str = "fsdd", data_dir=None, *, out, epochs: int = 4, hidden: int = 128,
            batch_size: int = 64, lr: float = 1e-2, seed: int = 0, time_steps: int = 100,
            lava_samples: int = 8, max_calibration: int = 512, command: str = "") -> dict:
    """Train, export, import, evaluate; returns the results dict (see the module docstring)."""
    import nir
    import torch
    from snntorch.export_nir import export_to_nir

    from deployed import netx_h5
    from deployed.emulator import emulate
    from export.float_reference import softmax_scores
    from export.from_nir import export_nir
    from hw_profiles import load_profile
    from lava_runtime.budget.estimate import estimate
    from lava_runtime.lava_graph.graph import run_network
    from trainer.data import load_dataset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    tr = load_dataset(dataset, "train", data_dir, seed=seed, time_steps=time_steps)
    te = load_dataset(dataset, "test", data_dir, seed=seed, time_steps=time_steps)
    gain = 1.0 / max(float(tr.x.abs().max()), 1e-12)  # features scaled to a maximum of 1
    net = build_snntorch(tr.x.shape[2], hidden, len(tr.class_names), input_gain=gain)
    t0 = time.time()
    train(net, tr.x, tr.y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    train_s = time.time() - t0
    with torch.no_grad():
        v_snn = run_snntorch(net, te.x).numpy()
    snn_acc = float(np.mean(softmax_scores(v_snn).argmax(1) == te.y.numpy()))

    graph = export_to_nir(net, torch.zeros(tr.x.shape[2]))
    nir.write(str(out / "snntorch.nir"), graph)
    x_te, y_te = te.x.numpy(), te.y.numpy()
    dep, report = export_nir(out / "snntorch.nir", dt_ms=0.1, lif_readout=True,
                             class_names=list(tr.class_names), data_recipe=tr.recipe,
                             calibration=(tr.x.numpy(), tr.y.numpy()),
                             evaluation=(x_te, y_te), max_calibration=max_calibration)
    netx_h5.save(dep, out / "net.h5")
    pay = dep.input.encode(x_te)
    act = emulate(dep, pay)
    lava = run_network(dep, pay[:lava_samples], backend="lava", timeout_s=600)
    emu = emulate(dep, pay[:lava_samples])
    lava_equal = bool(np.array_equal(lava.readout_v, emu.readout_v) and all(
        np.array_equal(a, b) for a, b in zip(lava.spikes, emu.spikes)))
    budget = estimate(dep, act, load_profile("loihi2")).to_json()
    acc = report["accuracy"]
    return {
        "command": command,
        "dataset": dataset, "train_samples": len(tr), "test_samples": len(te),
        "network": f"snnTorch Linear({tr.x.shape[2]},{hidden}) Leaky Linear({hidden},"
                   f"{len(tr.class_names)}) Leaky-readout, beta {BETA}",
        "epochs": epochs, "seed": seed, "train_seconds": round(train_s, 1),
        "nir_import": report["nir"],
        "test_accuracy": {"snntorch": snn_acc, "imported_float": acc["float"],
                          "quantized_emulator": acc["quantized"],
                          "quantized_agrees_with_float": acc["agreement_with_float"]},
        "lava_vs_emulator": {"samples": int(min(lava_samples, len(te))),
                             "identical": lava_equal, "backend": "lava fixed_pt (CPU)"},
        "loihi2_budget": {k: budget[k] for k in (
            "profile_version", "n_samples", "steps", "synops_per_sample", "spikes_per_sample",
            "neuron_updates_per_sample", "cores", "energy_per_sample_joules", "memory_bytes")},
        "profile_check": report["profile_check"]["usage"]["cores"],
    }


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import add_deprecated, new_parser

    p = new_parser("python -m experiments.nir_snntorch", __doc__)
    p.add_argument("--dataset", default="fsdd", help="trainer.data dataset to train on")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default: the data layer's default)")
    p.add_argument("--epochs", type=int, default=4, help="snnTorch training epochs")
    p.add_argument("--hidden", type=int, default=128, help="hidden Leaky neurons")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    limit = p.add_argument("--limit", type=int, default=8, dest="lava_samples", metavar="N",
                           help="first N test samples run through Lava and compared with the "
                                "emulator")
    add_deprecated(p, "--lava-samples", limit)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for snntorch.nir and net.h5; required, no default")
    p.add_argument("--json", default=None, metavar="FILE.json",
                   help="write the results here (default: printed only)")
    return p


def main(argv: list[str] | None = None) -> int:
    import json

    from trainer.file_io import write_json_atomic

    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    try:
        r = measure(a.dataset, a.data_dir, out=a.out, epochs=a.epochs, hidden=a.hidden,
                    seed=a.seed, lr=a.lr, lava_samples=a.lava_samples,
                    command="python -m experiments.nir_snntorch " + shlex.join(argv))
    except ModuleNotFoundError as e:
        print(f"error: {e}; this experiment needs snntorch and nirtorch (the test extra)",
              file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(r, indent=2, default=str))
    if a.json:
        write_json_atomic(r, Path(a.json), sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
