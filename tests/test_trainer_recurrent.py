"""Recurrent hidden layers (config ``recurrent``, trainer/recurrent.py): the timing rule (a spike
at step t arrives over a delay-d synapse at t + 1 + d), the model's forward against a slow loop
over the checkpoint's synapse lists, the hand-written backward against autograd, both execution
paths, rewiring with exact counts, how the synapse count splits, and that recurrent = false
leaves training and checkpoints exactly as they were."""
import copy
import math

import numpy as np
import pytest
import torch

import trainer
from trainer.checkpoint import build_checkpoint, checkpoint_from_dict
from trainer.config import identity, resolve_config
from trainer.layers import n_connections
from trainer.model import DelaySNN, loss_fn
from trainer.recurrent import (
    RecurrentConnection,
    SparseIndex,
    gaussian_taps,
    recurrent_lif,
    recurrent_lif_reference,
    split_sparsity,
    synapse_counts,
)
from trainer.rewiring import disconnected, disconnected_recurrent
from trainer.train import RewireSchedule, optimisation_step

METHODS = ["dcls", "structure", "structure-multi", "no-delay"]


def _cfg(**over):
    base = dict(hidden=[6], kernel_size=4, recurrent=True, recurrent_kernel_size=5, dropout=0.0,
                tau=3.0, threshold=0.5, seed=1)
    return resolve_config(overrides={**base, **over})


def test_spike_arrives_one_plus_delay_steps_later():
    """Neuron 0 spikes at step 3 only; its synapse to neuron 1 (delay 2, weight above
    threshold) makes neuron 1 spike at step 3 + 1 + 2 = 6, and at no other step."""
    T, K = 12, 4
    cur = torch.zeros(1, 2, T, dtype=torch.float64)
    cur[0, 0, 3] = 2.0
    idx = SparseIndex(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]), 2, K)
    s = recurrent_lif(cur, torch.tensor([3.0], dtype=torch.float64), K, 0.5, 1.0, 5.0, idx)
    assert torch.nonzero(s[0, 0]).view(-1).tolist() == [3]
    assert torch.nonzero(s[0, 1]).view(-1).tolist() == [6]
    kernel = torch.zeros(2, 2, K, dtype=torch.float64)       # the same synapse on the dense path
    kernel[1, 0, 2] = 3.0
    w = kernel.flip(-1).permute(0, 2, 1).reshape(2, 2 * K)
    assert torch.equal(recurrent_lif(cur, w, K, 0.5, 1.0, 5.0), s)


def _slow_network(model, x, ck_layers, hard):
    """Hidden spikes and readout of the model computed step by step in float64 from synapse
    lists: the feed-forward current from the model's own (unchanged) layers, then per step
    v = decay v + I_ff + sum over recurrent synapses of w * s[t - 1 - d], one synapse at a time."""
    h = x.transpose(1, 2)
    spikes = []
    for i, (conn, norm, lif) in enumerate(zip(model.connections, model.norms, model.lifs)):
        cur = norm(conn(h, hard=hard)).detach().numpy()          # (B, n, T)
        B, n, T = cur.shape
        rec = ck_layers[i]
        s = np.zeros((B, n, T))
        v = np.zeros((B, n))
        for t in range(T):
            inp = cur[:, :, t].copy()
            for pre, post, d, w in zip(rec["pre"], rec["post"], rec["delay"], rec["weight"]):
                if t - 1 - d >= 0:
                    inp[:, post] += w * s[:, pre, t - 1 - d]
            v = lif.decay * v + inp
            s[:, :, t] = v > lif.threshold
            v = np.where(s[:, :, t] > 0, 0.0, v)
        spikes.append(s)
        h = torch.from_numpy(s)
    v = model.readout(model.connections[-1](h, hard=hard))
    return spikes, v


def _soft_dcls_synapses(rec: RecurrentConnection) -> dict:
    """Every (pre, post, delay) of a dcls recurrent layer with its Gaussian share of the
    weight, computed here from the positions: centre P + K//2 in taps, tap j = delay K-1-j."""
    K = rec.K
    c = rec.P.detach() + K // 2
    s = rec.sigma.abs() + 0.27
    j = torch.arange(K, dtype=c.dtype)
    g = torch.exp(-0.5 * ((j - c.unsqueeze(-1)) / s) ** 2)
    g = g / (g.sum(-1, keepdim=True) + 1e-7)
    w = rec.effective_weight().detach().unsqueeze(-1) * g      # (post, pre, tap)
    post, pre, tap = torch.nonzero(torch.ones_like(w), as_tuple=True)
    return {"pre": pre.numpy(), "post": post.numpy(), "delay": (K - 1 - tap).numpy(),
            "weight": w[post, pre, tap].numpy()}


@pytest.mark.parametrize("method,sparsity,hard", [
    ("dcls", 0.0, True), ("dcls", 0.0, False), ("dcls", 0.5, False), ("dcls", 0.5, True),
    ("structure", 0.0, True), ("structure", 0.6, True), ("structure-multi", 0.8, True),
    ("structure-multi", 0.0, True), ("no-delay", 0.5, True)])
@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_forward_equals_slow_loop_over_synapses(method, sparsity, hard, path):
    cfg = _cfg(method=method, sparsity=sparsity, hidden=[6, 5], threshold=0.1)
    model = DelaySNN(3, 4, cfg).double().eval()
    for r in model.recurrent:
        r.set_sigma(0.8)
        r.sparse_max_density = 1.0 if path == "sparse" else 0.0     # either path, any density
    expect_sparse = path == "sparse" and (r.sparse or method == "dcls")
    assert r.sparse_path == expect_sparse
    torch.manual_seed(0)
    x = torch.rand(2, 25, 3, dtype=torch.float64) * 6
    v, spikes = model(x, hard=hard, return_spikes=True)
    if method == "dcls" and not hard:
        lists = [_soft_dcls_synapses(r) for r in model.recurrent]
    else:
        lists = [{k: t.numpy() for k, t in r.synapses().items()} for r in model.recurrent]
        lists = [{**d, "weight": r.effective_weight().detach().numpy()[
            (d["post"], d["pre"], d["delay"]) if method == "structure-multi"
            else (d["post"], d["pre"])]} for d, r in zip(lists, model.recurrent)]
    ref_spikes, ref_v = _slow_network(model, x, lists, hard)
    for s, ref in zip(spikes, ref_spikes):
        assert 0 < ref.sum() < ref.size                # spikes, and not every step
        assert np.array_equal(s.detach().numpy(), ref)
    assert torch.allclose(v, ref_v, atol=1e-10)
    assert max(int(r.synapses()["delay"].max()) for r in model.recurrent) >= (
        0 if method == "no-delay" else 1)


def test_recurrence_changes_the_output():
    """The same network without its recurrent synapses gives other spikes (the hook runs)."""
    cfg = _cfg(method="structure", sparsity=0.0)
    model = DelaySNN(3, 4, cfg).eval()
    x = torch.rand(2, 25, 3) * 3
    with_rec = model(x, hard=True)
    with torch.no_grad():
        model.recurrent[0].weight.zero_()
    assert not torch.equal(with_rec, model(x, hard=True))


@pytest.mark.parametrize("sparse,dot_cost", [(False, None), (True, 0), (True, 10 ** 9)])
@pytest.mark.parametrize("with_mask", [False, True])
def test_backward_equals_autograd_reference(sparse, dot_cost, with_mask, monkeypatch):
    """Dense path; sparse path with each form of its weight gradient (CSR-sampled dot
    products, dense product of the rows it reads)."""
    if dot_cost is not None:
        monkeypatch.setattr("trainer.recurrent.SAMPLED_DOT_COST", dot_cost)
    torch.manual_seed(3)
    T, B, n, K = 30, 3, 5, 4
    cur = (torch.rand(B, n, T, dtype=torch.float64) * 0.9).requires_grad_()
    keep = torch.rand(n, n, K) < (0.5 if sparse else 2)
    kernel = (torch.randn(n, n, K, dtype=torch.float64) * 0.5 * keep).requires_grad_()
    mask = (torch.rand(B, n) < 0.7).double() / 0.7 if with_mask else None
    ref = recurrent_lif_reference(cur.permute(2, 0, 1), kernel, 0.9, 1.0, 5.0, mask)
    ref = ref.permute(1, 2, 0)
    g = torch.randn_like(ref)
    gc_ref, gk_ref = torch.autograd.grad((ref * g).sum(), (cur, kernel))
    if sparse:
        post, pre, d = torch.nonzero(keep, as_tuple=True)
        w = kernel[post, pre, d]
        out = recurrent_lif(cur, w, K, 0.9, 1.0, 5.0, SparseIndex(pre, post, d, n, K), mask)
    else:
        out = recurrent_lif(cur, kernel.flip(-1).permute(0, 2, 1).reshape(n, K * n), K, 0.9,
                            1.0, 5.0, None, mask)
    gc, gk = torch.autograd.grad((out * g).sum(), (cur, kernel))
    assert 0 < ref.sum() < ref.numel()
    assert torch.equal(out, ref)
    assert torch.allclose(gc, gc_ref, atol=1e-11)
    assert torch.allclose(gk * keep, gk_ref * keep, atol=1e-11)
    assert gk_ref.abs().max() > 1e-3


@pytest.mark.parametrize("method", ["structure", "structure-multi", "no-delay", "dcls"])
def test_sparse_path_matches_dense_path_and_candidate_grad(method):
    """Both paths give the same spikes and weight gradient; the sparse path's candidate
    gradient (RigL's score, on request) equals the dense path's theta.grad everywhere. dcls
    at a kernel long enough for the sparse path to keep only part of each Gaussian."""
    cfg = _cfg(method=method, sparsity=0.7, recurrent_kernel_size=20)
    torch.manual_seed(0)
    x = torch.rand(3, 25, 3, dtype=torch.float64) * 3
    y = torch.tensor([0, 1, 2])
    out = {}
    for sparse_path in (False, True):
        model = DelaySNN(3, 4, cfg).double()
        rec = model.recurrent[0]
        rec.set_sigma(0.3)
        assert method != "dcls" or rec.dcls_window()[0] < 20
        rec.sparse_max_density = 1.0 if sparse_path else 0.0
        assert rec.sparse_path == sparse_path
        rec.want_candidate_grad(True)
        v = model(x)
        loss_fn(v, y).backward()
        out[sparse_path] = (v.detach(), rec.theta.grad * rec.mask, rec.candidate_grad())
    tol = 1e-7 if method == "dcls" else 1e-12    # the Gaussian taps left out: < 2^-24 each
    assert torch.allclose(out[False][0], out[True][0], atol=tol)
    assert torch.allclose(out[False][1], out[True][1], atol=tol)     # existing synapses
    assert torch.allclose(out[False][2], out[True][2], atol=tol)     # every candidate
    assert out[True][2].abs().max() > 0


def test_gaussian_taps_equal_the_dcls_package_kernel():
    from DCLS.construct.modules import ConstructKernel1d
    K, n = 9, 4
    torch.manual_seed(0)
    P = torch.rand(1, n, n, 1) * 8 - 4
    sig = torch.full((1, n, n, 1), 1.3)
    W = torch.randn(n, n, 1)
    ref = ConstructKernel1d(n, n, 1, 1, (K,), "gauss")(W, P, sig)       # (out, in, K)
    ours = W * gaussian_taps(P[0, :, :, 0] + K // 2, torch.tensor(1.3), K)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_dcls_rounds_recurrent_positions_like_feed_forward():
    cfg = _cfg(method="dcls", recurrent_kernel_size=7)
    rec = DelaySNN(3, 4, cfg).recurrent[0]
    with torch.no_grad():
        rec.P.copy_(torch.linspace(-3.4, 3.4, 36).view(6, 6))
    d = rec.integer_delays()
    assert torch.equal(d, 6 - (torch.round(rec.P.detach()) + 3).long())
    assert int(d.min()) == 0 and int(d.max()) == 6
    k = rec.kernel(hard=True)          # one-hot at tap K-1-d holding the weight
    w = rec.effective_weight().detach()
    assert torch.equal(k.sum(-1), w)
    assert torch.equal(k.abs().argmax(-1), 6 - d) and bool((w != 0).all())
    syn = rec.synapses()
    assert torch.equal(syn["delay"], d[syn["post"], syn["pre"]])


def test_dale_gives_recurrent_synapses_the_neurons_outgoing_sign():
    cfg = _cfg(method="structure", sparsity=0.5, dale=True, hidden=[6, 5])
    model = DelaySNN(3, 4, cfg)
    for i, rec in enumerate(model.recurrent):
        nxt = model.connections[i + 1]
        pre_sign = nxt.sign[0]
        assert torch.equal(rec.sign, pre_sign.view(1, -1).expand(rec.n, rec.n))
        assert set(pre_sign.tolist()) == {-1.0, 1.0}


def _counts_ok(model, sparsity):
    for c in model.synapse_layers():
        assert c.connections() == n_connections(c.theta.numel(), sparsity)
        assert c.theta[~c.mask].eq(0).all() and c.theta[c.mask].gt(0).all()


@pytest.mark.parametrize("method", ["structure", "structure-multi", "dcls"])
def test_training_rewires_recurrent_synapses_with_exact_counts(tmp_path, method):
    prev, changed, steps = [None], [0], [0]

    def on_step(model, epoch, step):
        _counts_ok(model, 0.9)
        m = model.recurrent[0].mask.clone()
        if prev[0] is not None:
            changed[0] += int((prev[0] & ~m).sum())
        prev[0] = m
        steps[0] += 1

    trainer.train({"dataset": "synthetic", "method": method, "sparsity": 0.9, "hidden": [16],
                   "epochs": 2, "lr": 0.1, "max_lr": 0.2, "batch_size": 50, "kernel_size": 5,
                   "recurrent": True, "recurrent_kernel_size": 7, "rigl_drop_fraction": 0.3,
                   "rewire_interval": 2, "num_threads": 1, "n_mels": 8,
                   "data_options": {"n_train": 200, "n_test": 40}},
                  out=tmp_path / "run", progress=False, on_step=on_step)
    assert steps[0] == 2 * 4
    assert changed[0] > 5            # recurrent synapses were really rewired


def test_disconnected_counts_recurrent_links():
    """One-hop rule with recurrent synapses: a hidden neuron without outgoing feed-forward
    connections still feeds something through a recurrent synapse to another neuron (not
    through a self-loop alone); without recurrence the result is disconnected()'s."""
    ff = [torch.ones(3, 2, dtype=torch.bool), torch.zeros(2, 3, dtype=torch.bool)]
    ff[1][:, 0] = True                          # only hidden neuron 0 feeds the output
    rec = torch.zeros(3, 3, dtype=torch.bool)
    rec[0, 1] = True                            # 1 -> 0: neuron 1 now feeds something
    rec[2, 2] = True                            # a self-loop of neuron 2: it still does not
    out = disconnected_recurrent(ff, [rec])
    dead_in = out[0].view(3, 2)
    assert dead_in[2].all() and not dead_in[0].any() and not dead_in[1].any()
    assert out[2].view(3, 3)[2, 2]              # the self-loop of a dead end is dead too
    assert not out[2].view(3, 3)[0, 1]
    none = disconnected_recurrent(ff, [torch.zeros(3, 3, dtype=torch.bool)])
    assert all(torch.equal(a, b) for a, b in zip(none[:2], disconnected(ff)))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.97])
def test_equal_synapses_total_is_exact(method, sparsity):
    cfg = _cfg(method=method, sparsity=sparsity, hidden=[20, 16], kernel_size=5,
               recurrent_equal_synapses=True)
    ff_only = synapse_counts({**cfg, "recurrent": False}, 12, 10, sparsity)["feed_forward"]
    s_ff, s_rec = split_sparsity(cfg, 12, 10)
    model = DelaySNN(12, 10, cfg)
    total = sum(model.connection_counts()) + sum(model.recurrent_connection_counts())
    assert total == sum(ff_only)
    assert s_ff > sparsity and min(model.recurrent_connection_counts()) > 1
    assert abs(s_rec[0] - s_ff) < 3 / (20 * 20) and s_rec[1] == s_ff
    plain = DelaySNN(12, 10, {**cfg, "recurrent_equal_synapses": False})
    assert split_sparsity({**cfg, "recurrent_equal_synapses": False}, 12, 10) == (
        sparsity, [sparsity, sparsity])
    assert sum(plain.connection_counts()) == sum(ff_only)
    assert plain.recurrent_connection_counts() == synapse_counts(cfg, 12, 10,
                                                                 sparsity)["recurrent"]


def test_config_checks():
    with pytest.raises(ValueError, match="recurrent_kernel_size must be 0"):
        resolve_config(overrides={"recurrent": True, "recurrent_kernel_size": 64})
    with pytest.raises(ValueError, match="needs recurrent = true"):
        resolve_config(overrides={"recurrent_equal_synapses": True})
    with pytest.raises(ValueError, match="recurrent must be true or false"):
        resolve_config(overrides={"recurrent": 1})
    cfg = resolve_config()
    assert not any(k.startswith("recurrent") for k in identity(cfg))   # old records match
    assert identity(resolve_config(overrides={"recurrent": True}))["recurrent"] is True


def _steps(cfg, n_steps=3):
    """Losses (as exact floats) and the final state of a few optimisation steps with dropout."""
    model = DelaySNN(8, 4, cfg)
    pos = model.positions()
    weights = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in pos)]
    opt_w = torch.optim.Adam(weights, lr=1e-2)
    opt_p = torch.optim.Adam(pos, lr=0.1) if pos else None
    sparse = [c for c in model.synapse_layers() if c.sparse]
    schedule = RewireSchedule.from_config(cfg, 100)
    g = torch.Generator().manual_seed(5)
    losses = []
    for step in range(n_steps):
        x = torch.rand(6, 30, 8, generator=g) * 2
        y = torch.randint(0, 4, (6,), generator=g)
        masks = model.dropout_masks(6, torch.Generator().manual_seed(step), "cpu")
        model.set_sigma(2.0 - step * 0.5)
        _, loss, _ = optimisation_step(model, model, x, y, masks, 1 / 6, 0.0, opt_w, opt_p,
                                       sparse, [], schedule=schedule, step=step)
        losses.append(float(loss.detach()))
    return losses, model


@pytest.mark.parametrize("method,sparsity", [("dcls", 0.0), ("structure", 0.9),
                                             ("structure-multi", 0.95)])
def test_recurrent_false_is_bit_identical_to_the_key_absent(method, sparsity):
    cfg = resolve_config(overrides=dict(method=method, sparsity=sparsity, hidden=[12],
                                        kernel_size=5, dropout=0.2, threshold=0.3))
    assert cfg["recurrent"] is False
    absent = copy.deepcopy(cfg)
    for key in ("recurrent", "recurrent_kernel_size", "recurrent_equal_synapses"):
        del absent[key]
    (l_false, m_false), (l_absent, m_absent) = _steps(cfg), _steps(absent)
    assert l_false == l_absent and all(math.isfinite(v) for v in l_false)
    assert m_false.recurrent is None and m_absent.recurrent is None
    sd_a, sd_b = m_false.state_dict(), m_absent.state_dict()
    assert list(sd_a) == list(sd_b) and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    ck = build_checkpoint(m_false, cfg, list("abcd"), {}, 1, 0.5)
    assert all("recurrent" not in L for L in ck["layers"])
    with_rec = _steps({**cfg, "recurrent": True})[1]
    assert with_rec.recurrent is not None      # the key does reach the model


def test_checkpoint_layers_carry_recurrent_synapses():
    cfg = _cfg(method="structure-multi", sparsity=0.8, hidden=[6, 5])
    model = DelaySNN(3, 4, cfg)
    ck = build_checkpoint(model, cfg, list("abcd"), {"n_channels": 3}, 1, 0.5)
    hidden, readout = ck["layers"][:-1], ck["layers"][-1]
    assert "recurrent" not in readout
    for L, rec in zip(hidden, model.recurrent):
        r = L["recurrent"]
        assert set(r) == {"pre", "post", "delay", "weight"}
        assert len(r["pre"]) == rec.connections() == n_connections(6 * 6 * 5 if L["n_out"] == 6
                                                                   else 5 * 5 * 5, 0.8)
        assert r["delay"].dtype == torch.int64 and int(r["delay"].max()) <= 4
        assert int(r["pre"].max()) < L["n_out"] and int(r["post"].max()) < L["n_out"]
        w = rec.effective_weight().detach()[r["post"], r["pre"], r["delay"]]
        assert torch.equal(r["weight"], w.float())
    read = checkpoint_from_dict(ck)                 # the one reader gives CkptLayer.recurrent
    assert read.layers[-1].recurrent is None
    for L, raw in zip(read.layers[:-1], hidden):
        for key in ("pre", "post", "delay", "weight"):
            assert np.array_equal(getattr(L.recurrent, key), raw["recurrent"][key].numpy())


def _same_on(device, method, path):
    """A recurrent network's readout, weight gradient and RigL candidate gradient on
    ``device`` equal those on the CPU (float64)."""
    cfg = _cfg(method=method, sparsity=0.7, recurrent_kernel_size=9)
    torch.manual_seed(0)
    x = torch.rand(3, 25, 3, dtype=torch.float64) * 3
    y = torch.tensor([0, 1, 2])
    out = []
    for dev in ("cpu", device):
        model = DelaySNN(3, 4, cfg).double().to(dev)
        rec = model.recurrent[0]
        rec.set_sigma(0.3)
        rec.sparse_max_density = 1.0 if path == "sparse" else 0.0
        rec.want_candidate_grad(True)
        loss_fn(model(x.to(dev)), y.to(dev)).backward()
        out.append([t.detach().cpu() for t in (model(x.to(dev)), rec.theta.grad,
                                                rec.candidate_grad())])
    for a, b in zip(*out):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("method", ["dcls", "structure-multi"])
def test_same_on_cpu_twice(method):
    """The device check's own code, run on the CPU (where a GPU is missing)."""
    _same_on("cpu", method, "sparse")


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["dcls", "structure", "structure-multi", "no-delay"])
@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_recurrent_on_cuda(cuda_device, method, path):
    _same_on(cuda_device, method, path)
