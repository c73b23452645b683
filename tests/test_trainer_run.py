"""Runs end to end on small synthetic data: the checkpoint contract (docs/design.md section 2)
re-implemented independently, evaluate, resume equality, and bad input that leaves files alone."""
import hashlib
import json

import numpy as np
import pytest
import torch

import trainer
from trainer.__main__ import main
from trainer.data import load_dataset
from trainer.evaluate import model_from_checkpoint, predict

TINY = {"dataset": "synthetic", "method": "dcls", "hidden": [16], "kernel_size": 9,
        "epochs": 2, "batch_size": 50, "num_threads": 1, "data_options": {"n_train": 200, "n_test": 60}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = trainer.train(TINY, out=out, progress=False)
    return out, result


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def float_semantics(ckpt, x):
    """The float network of design.md section 2 from the checkpoint's plain data only."""
    h = x.numpy().astype(np.float64)                      # (B, T, C)
    B, T, _ = h.shape
    for layer in ckpt["layers"]:
        cur = np.zeros((B, T, layer["n_out"]))
        for p, q, d, w in zip(layer["pre"].numpy(), layer["post"].numpy(),
                              layer["delay"].numpy(), layer["weight"].numpy().astype(np.float64)):
            cur[:, d:, q] += w * h[:, :T - d, p]
        if layer["bn"] is not None:
            bn = {k: v.numpy().astype(np.float64) if k != "eps" else v for k, v in layer["bn"].items()}
            a = bn["weight"] / np.sqrt(bn["running_var"] + bn["eps"])
            cur = a * cur + (bn["bias"] - a * bn["running_mean"])
        n = layer["neuron"]
        v, out = np.zeros((B, layer["n_out"])), np.zeros_like(cur)
        for t in range(T):
            v = n["decay"] * v + cur[:, t]
            if n["spiking"]:
                s = v > n["threshold"]
                out[:, t] = s
                v = np.where(s, 0.0, v)
            else:
                out[:, t] = v
        h = out
    e = np.exp(h - h.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).sum(axis=1).argmax(axis=1)


def test_checkpoint_contract(run):
    out, result = run
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["format"] == "delaysnn-checkpoint" and ckpt["version"] == 1
    assert ckpt["config"]["method"] == "dcls" and ckpt["config"]["kernel_size"] == 9
    assert ckpt["class_names"] == [str(c) for c in ckpt["class_names"]] and len(ckpt["class_names"]) == 10
    assert ckpt["data_recipe"]["dataset"] == "synthetic" and ckpt["data_recipe"]["n_channels"] == 40
    assert ckpt["epoch"] == result.metrics["best_epoch"]
    assert ckpt["val_accuracy"] == result.metrics["val_accuracy"]
    assert [l["name"] for l in ckpt["layers"]] == ["fc1", "readout"]
    fc1, ro = ckpt["layers"]
    assert (fc1["n_in"], fc1["n_out"], ro["n_in"], ro["n_out"]) == (40, 16, 16, 10)
    for layer in ckpt["layers"]:
        for k in ("pre", "post", "delay"):
            assert layer[k].dtype == torch.int64 and layer[k].shape == layer["weight"].shape
        assert layer["weight"].dtype == torch.float32
        assert 0 <= int(layer["delay"].min()) and int(layer["delay"].max()) <= 8
        assert layer["neuron"]["dv"] == 408 and layer["neuron"]["decay"] == 1 - 408 / 4096
    assert len(fc1["weight"]) == 640 and len(ro["weight"]) == 160
    assert fc1["neuron"]["spiking"] is True and ro["neuron"]["spiking"] is False
    assert set(fc1["bn"]) == {"weight", "bias", "running_mean", "running_var", "eps"}
    assert ro["bn"] is None
    # the plain data alone reproduces the trained network's integer-delay predictions
    test = load_dataset("synthetic", "test", n_test=60, n_train=200)
    model = model_from_checkpoint(ckpt)
    assert np.array_equal(float_semantics(ckpt, test.x), predict(model, test.x, hard=True).numpy())
    acc = float((torch.from_numpy(float_semantics(ckpt, test.x)) == test.y).float().mean())
    assert acc == result.metrics["test_accuracy"]


def test_metrics_and_evaluate(run, capsys):
    out, result = run
    m = json.loads((out / "metrics.json").read_text())
    assert m == result.metrics
    for key in ("val_accuracy", "test_accuracy", "test_accuracy_train_kernels", "connections",
                "sparsity", "method", "seed", "epochs", "seconds", "history"):
        assert key in m
    assert [h["epoch"] for h in m["history"]] == [1, 2] and m["connections"] == [640, 160]
    r = trainer.evaluate(out, "test")
    assert r["accuracy"] == m["test_accuracy"]
    assert r["accuracy_train_kernels"] == m["test_accuracy_train_kernels"]
    assert main(["evaluate", str(out), "--split", "test"]) == 0
    assert f"accuracy {m['test_accuracy']:.2%} (integer delays)" in capsys.readouterr().out


def test_resume_equals_uninterrupted(run, tmp_path):
    out, result = run
    part = trainer.train(TINY, out=tmp_path / "r", progress=False, stop_after_epoch=1)
    assert part.metrics is None and not (tmp_path / "r" / "metrics.json").exists()
    done = trainer.train(TINY, out=tmp_path / "r", resume=True, progress=False)
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds" and k != "history"}
    assert strip(done.metrics) == strip(result.metrics)
    hist = lambda m: [{k: v for k, v in h.items() if k != "seconds"} for h in m["history"]]
    assert hist(done.metrics) == hist(result.metrics)
    a = torch.load(out / "checkpoint.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["model_state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("argv,message", [
    (["--method", "gauss"], "unknown method 'gauss'; choose one of dcls, structure"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'; choose one of"),
    (["--sparsity", "1.0"], r"sparsity must be in \[0, 1\), got 1.0"),
    (["--sparsity", "-0.1"], r"sparsity must be in \[0, 1\), got -0.1"),
    (["--kernel-size", "64"], "maximum delay of 63 steps, above the hardware limit of 62"),
    (["--set", "bogus=1"], "unknown config key"),
])
def test_bad_input_is_refused_before_work(tmp_path, capsys, argv, message):
    import re
    assert main(["train", "--out", str(tmp_path / "x"), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


def test_run_dir_of_another_run_is_not_overwritten(run, capsys):
    out, _ = run
    before = digest(out)
    with pytest.raises(ValueError, match=r"holds another run \(config differs: seed: 0 -> 1\)"):
        trainer.train({**TINY, "seed": 1}, out=out, progress=False)
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        trainer.train(TINY, out=out, progress=False)
    with pytest.raises(ValueError, match=r"--resume: the config differs .*seed: 0 -> 1"):
        trainer.train({**TINY, "seed": 1}, out=out, resume=True, progress=False)
    assert main(["train", "--out", str(out), "--dataset", "synthetic", "--seed", "3"]) == 2
    assert "holds another run" in capsys.readouterr().err
    assert digest(out) == before


def test_corrupt_last_checkpoint_on_resume(run, tmp_path):
    out, _ = run
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in out.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "last.pt").write_bytes((copy / "last.pt").read_bytes()[:1000])
    before = digest(copy)
    with pytest.raises(ValueError, match="last.pt is truncated or damaged"):
        trainer.train(TINY, out=copy, resume=True, progress=False)
    assert digest(copy) == before


def test_resume_of_nothing(tmp_path):
    with pytest.raises(ValueError, match="holds no run to resume"):
        trainer.train(TINY, out=tmp_path / "none", resume=True, progress=False)


def test_two_hidden_layers_structure_multi_sparse(tmp_path):
    cfg = {**TINY, "method": "structure-multi", "sparsity": 0.8, "hidden": [8, 6], "epochs": 1,
           "batchnorm": True, "dale": True}
    result = trainer.train(cfg, out=tmp_path / "deep", progress=False)
    ckpt = torch.load(tmp_path / "deep" / "checkpoint.pt", weights_only=True)
    assert [l["name"] for l in ckpt["layers"]] == ["fc1", "fc2", "readout"]
    assert [len(l["weight"]) for l in ckpt["layers"]] == result.metrics["connections"] == \
        [round(0.2 * 40 * 8 * 9), round(0.2 * 8 * 6 * 9), round(0.2 * 6 * 10 * 9)]
    test = load_dataset("synthetic", "test", n_test=60, n_train=200)
    model = model_from_checkpoint(ckpt)
    assert np.array_equal(float_semantics(ckpt, test.x), predict(model, test.x, hard=True).numpy())


def test_train_leaves_flush_denormal_off(tmp_path):
    """train() turns flush-to-zero on for speed; it must not leak into the caller's process
    (scipy's cKDTree, used by trainer.analyze, segfaults under it)."""
    trainer.train({**TINY, "epochs": 1}, out=tmp_path / "run", progress=False)
    tiny = np.array([1e-310])  # a float64 subnormal: flushed to 0 while the flag is on
    assert (tiny * 1.0)[0] != 0.0


@pytest.mark.parametrize("method,sparsity,scale", [
    ("structure-multi", 0.0, 1 / 9),              # 9 synapses per (pre, post) pair
    ("structure-multi", 0.5, 1 / 4.5),
    ("structure-multi", 0.95, 1.0),               # 0.45 per pair: no scaling
    ("structure", 0.0, 1.0), ("dcls", 0.5, 1.0)])
def test_adam_lr_of_a_layer_is_divided_by_its_synapses_per_pair(tmp_path, method, sparsity,
                                                                  scale):
    cfg = {**TINY, "method": method, "sparsity": sparsity, "epochs": 1}
    trainer.train(cfg, out=tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    groups = state["optimizers"]["w"]["param_groups"]
    max_lr = sorted(g["max_lr"] for g in groups)
    if scale == 1.0:          # one group, as before the rule
        assert len(groups) == 1 and max_lr == [pytest.approx(5e-3)]
    else:                     # fc1 and readout weights scaled, BatchNorm not
        assert max_lr == [pytest.approx(5e-3 * scale), pytest.approx(5e-3)]
        assert [len(g["params"]) for g in sorted(groups, key=lambda g: g["max_lr"])][0] == 2
