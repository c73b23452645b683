"""bench/profile_step.py attributes every op of a training step to one stage: the shares add
up to the whole, the network's parts each get their forward and backward time, and the sparse
path's RigL candidate gradient shows up on its regrowth step."""
import importlib.util
from pathlib import Path

import pytest


def lif_kernel_builds() -> bool:
    from trainer.lif_kernel import unavailable_reason
    return unavailable_reason() is None

BENCH = Path(__file__).resolve().parents[1] / "bench" / "profile_step.py"


@pytest.fixture(scope="module")
def profile_step():
    spec = importlib.util.spec_from_file_location("profile_step", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("lif_kernel", ["torch", "auto"])
def test_stages_cover_the_step(profile_step, lif_kernel):
    doc = profile_step.profile("structure", 0.9, batch=1, steps=1, warmup=1, top=5,
                               first_step=10, lif_kernel=lif_kernel)
    stages = {r["stage"]: r["ms_per_step"] for r in doc["stages"]}
    assert abs(sum(r["share"] for r in doc["stages"]) - 1) < 0.01
    fused = doc["setup"]["lif_kernel"] == "cpp"
    assert fused == (lif_kernel == "auto" and lif_kernel_builds())
    parts = ["batchnorm + lif (compiled)"] if fused else ["lif", "batchnorm"]
    for part in ["delay layer", "readout", *parts]:
        assert stages[part] > 0 and stages[part + " bwd"] > 0, part
    assert stages["RigL candidate gradient (sparse path)"] > 0      # step 10 regrows by score
    assert doc["setup"]["first_step"] == 10
    assert stages["optimizer"] > 0 and stages["loss"] > 0
    assert doc["setup"]["sparse_path"] == [True, True] and len(doc["top_ops"]) == 5


def test_dense_kernel_construction_is_its_own_stage(profile_step):
    doc = profile_step.profile("dcls", 0.0, batch=1, steps=1, warmup=0, top=3, first_step=3)
    stages = {r["stage"] for r in doc["stages"]}
    assert {"delay kernel construction", "delay kernel construction bwd"} <= stages
    assert "RigL candidate gradient (sparse path)" not in stages
