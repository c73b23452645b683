"""experiments.sweep's --lif-kernel: set on every point, not part of a point's identity."""
from pathlib import Path

from experiments.sweep_config import load_grid, plan
from trainer.config import identity


def test_lif_kernel_reaches_every_point_and_leaves_identity_alone():
    grid = load_grid(Path(__file__).resolve().parents[1] / "experiments" / "fsdd.toml")
    base, _ = plan(grid, device="cpu", groups=["structure"], sparsities=[0.9], seeds=[0])
    torch_ops, _ = plan(grid, device="cpu", groups=["structure"], sparsities=[0.9], seeds=[0],
                        lif_kernel="torch")
    assert len(base) == len(torch_ops) == 1
    assert base[0]["config"]["lif_kernel"] == "auto"
    assert torch_ops[0]["config"]["lif_kernel"] == "torch"
    assert identity(base[0]["config"]) == identity(torch_ops[0]["config"])
