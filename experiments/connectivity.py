"""How much of a sparse network can carry signal from the input to the output (for docs/results).

    python -m experiments.connectivity RUN_DIR... --label LABEL --command "CMD" --json OUT.json

Per run, for the network at initialisation (RUN_DIR/checkpoint_init.pt) and the
validation-selected one (RUN_DIR/checkpoint.pt): per layer the synapse count and the share that
is disconnected (trainer.rewiring.disconnected: the postsynaptic neuron has no outgoing
synapse, or the presynaptic neuron no incoming one; such a synapse has a zero gradient and
cannot change the output), the number of hidden neurons with both input and output
synapses, and the share of hidden neurons that never spike on the first 256 validation samples
with the training forward pass (BatchNorm on batch statistics, as the gradient sees them).
From metrics.json: test and validation accuracy and the connections regrown per epoch (all
layers). An existing OUT.json keeps its other labels.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from trainer.rewiring import disconnected

SILENT_SAMPLES = 256


@torch.no_grad()
def silent_fractions(ck: dict, x: torch.Tensor) -> list[float]:
    """Share of each hidden layer's neurons without a spike on inputs ``x`` (B, T, C), in the
    training forward pass (batch-statistics BatchNorm, training kernels, no dropout)."""
    from trainer.evaluate import model_from_checkpoint
    model = model_from_checkpoint(ck).train()
    _, spikes = model(x, hard=False, return_spikes=True)
    return [round(float((s.sum(dim=(0, 2)) == 0).float().mean()), 4) for s in spikes]


def connectivity(checkpoint: Path, x: torch.Tensor | None = None) -> dict:
    """Synapse counts and disconnected shares of a trainer checkpoint (export contract), and
    with inputs ``x`` the silent share of each hidden layer (silent_fractions)."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    layers = ck["layers"]
    pairs = []
    for L in layers:
        m = torch.zeros(L["n_out"], L["n_in"], dtype=torch.bool)
        m[L["post"], L["pre"]] = True
        pairs.append(m)
    dead = [d.view(m.shape) for d, m in zip(disconnected(pairs), pairs)]
    out: dict = {"layers": []}
    for L, d in zip(layers, dead):
        n = len(L["pre"])
        n_dead = int(d[L["post"], L["pre"]].sum())
        out["layers"].append({"name": L["name"], "synapses": n, "disconnected": n_dead,
                              "disconnected_fraction": round(n_dead / max(1, n), 4)})
    hidden: list[dict] = []
    for a, b in zip(pairs[:-1], pairs[1:]):
        has_in, has_out = a.any(1), b.any(0)
        hidden.append({"neurons": int(a.shape[0]), "without_input": int((~has_in).sum()),
                       "without_output": int((~has_out).sum()),
                       "with_input_and_output": int((has_in & has_out).sum())})
    if x is not None:
        for h, f in zip(hidden, silent_fractions(ck, x)):
            h["silent_fraction"] = f
    out["hidden"] = hidden
    return out


def run_summary(run_dir: Path) -> dict:
    from trainer.data import dataset_from_recipe
    m = json.loads((run_dir / "metrics.json").read_text())
    recipe = torch.load(run_dir / "checkpoint.pt", map_location="cpu",
                        weights_only=False)["data_recipe"]
    x = dataset_from_recipe(recipe, "val").x[:SILENT_SAMPLES]
    return {"method": m["method"], "sparsity": m["sparsity"], "seed": m["seed"],
            "epochs": m["epochs"], "best_epoch": m["best_epoch"],
            "val_accuracy": m["val_accuracy"], "test_accuracy": m["test_accuracy"],
            "regrown_per_epoch": [sum(h["regrown"]) for h in m["history"]],
            "init": connectivity(run_dir / "checkpoint_init.pt", x),
            "trained": connectivity(run_dir / "checkpoint.pt", x)}


def main(argv=None) -> int:
    from experiments.collect_runs import record_runs

    entry = record_runs(argv, "python -m experiments.connectivity", __doc__.splitlines()[0],
                        run_summary, need=("metrics.json", "checkpoint.pt", "checkpoint_init.pt"))
    for r in entry["runs"]:
        fc = [f"{L['name']} {L['disconnected_fraction']:.0%}" for L in r["trained"]["layers"]]
        print(f"{entry['label']}: {r['method']} S={r['sparsity']} seed {r['seed']} test "
              f"{r['test_accuracy']:.2%}; disconnected after training: {', '.join(fc)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
