"""Cross-check: NeuroBench's effective synaptic operations (forward hooks on nn.Linear) equal the
estimator's synops for the same spikes.

The float model with integer delays is built from the DeployedNetwork: per layer one nn.Linear
over the stack [x[t], x[t-1], ..., x[t-D]] (n_in * (D + 1) inputs), whose weight holds each
synapse (pre, post, d) at column d * n_in + pre -- a DCLS kernel with hard one-hot taps. The
model records its own spikes, which become the Activity the estimator reads, so both counters see
the same events. Exact relations checked:
- every event at step s meets every delay d because each layer's Linear also runs for D steps
  after the window (zero input there), so NeuroBench sees each event x[s] times each synapse
  (pre, post, d) exactly once, as the estimator counts it;
- the first layer's inputs are graded payloads (not in {0, 1}): NeuroBench files them as MACs,
  hidden layers' binary spikes as ACs; Effective_MACs + Effective_ACs = synops;
- NeuroBench skips zero weights, the estimator does not (the chip still processes a synapse whose
  integer weight is 0): with one zero-weight synapse the difference is exactly the events of
  its presynaptic neuron;
- NeuroBench's Dense counts every entry of the stacked weight matrix (absent synapses included)
  for every Linear call: n_out * n_in * (D + 1) * (steps + D) per layer, not the estimator's
  dense count (existing synapses x window steps).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("neurobench", reason="neurobench not installed: it is in the `test` extra, "
                                         "which `make test` installs")
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from helpers.budget_nets import activity, layer, network  # noqa: E402
from hw_profiles import load_profile  # noqa: E402
from lava_runtime.budget.estimate import estimate  # noqa: E402

N, T, C, H, O = 6, 24, 6, 10, 3


class DelayStackLinear(nn.Module):
    """One connection layer with integer delays as nn.Linear over the time-shifted input stack."""

    def __init__(self, conn):
        super().__init__()
        self.n_in, self.d = conn.n_in, conn.max_delay
        self.fc = nn.Linear(conn.n_in * (self.d + 1), conn.n_out, bias=False)
        w = torch.zeros(conn.n_out, conn.n_in * (self.d + 1), dtype=torch.float64)
        for pre, post, d, wt in zip(conn.pre, conn.post, conn.delay, conn.weight):
            w[post, d * conn.n_in + pre] = float(wt)
        self.fc.weight.data = w.float()

    def forward(self, ev):
        """ev (B, R, n_in) -> input current (B, R, n_out); runs R + D Linear calls."""
        b, r, _ = ev.shape
        z = ev.new_zeros(b, self.d, self.n_in)
        padded = torch.cat([z, ev, z], dim=1)  # padded[:, D + s] = ev[:, s]
        out = []
        for t in range(r + self.d):
            stack = torch.cat([padded[:, self.d + t - d] for d in range(self.d + 1)], dim=1)
            out.append(self.fc(stack))
        return torch.stack(out, dim=1)[:, :r]


class FloatDelayNet(nn.Module):
    """Float LIF network (v = decay * v + I, spike if v > threshold, reset to 0)."""

    def __init__(self, net, threshold=4.0, decay=0.9):
        super().__init__()
        self.conns = nn.ModuleList(DelayStackLinear(c) for c in net.layers)
        self.threshold, self.decay = threshold, decay
        self.recorded = []

    def forward(self, x):
        ev, self.recorded = x, []
        for k, conn in enumerate(self.conns):
            cur = conn(ev)
            v = torch.zeros_like(cur[:, 0])
            spikes, vs = [], []
            for t in range(cur.shape[1]):
                v = self.decay * v + cur[:, t]
                s = (v > self.threshold).float()
                if k < len(self.conns) - 1:
                    v = v * (1 - s)
                spikes.append(s)
                vs.append(v)
            if k < len(self.conns) - 1:
                ev = torch.stack(spikes, dim=1)
                self.recorded.append(ev.detach().numpy().astype(np.uint8))
        return torch.stack(vs, dim=1).sum(dim=1)


def random_net(seed, zero_weight=False):
    rng = np.random.default_rng(seed)

    def syn(n_in, n_out, n, max_d):
        keys = rng.choice(n_in * n_out * (max_d + 1), size=n, replace=False)
        pre, rest = keys % n_in, keys // n_in
        post, d = rest % n_out, rest // n_out
        w = rng.integers(2, 12, size=n) * rng.choice([-1, 1, 1, 1], size=n)
        return list(zip(pre, post, d, w))

    fc1 = layer("fc1", C, H, syn(C, H, 30, 4), message_bits=4)
    fc2 = layer("fc2", H, H, syn(H, H, 40, 3))
    out = layer("out", H, O, syn(H, O, 20, 2), spiking=False)
    if zero_weight:
        fc2.weight[0] = 0
    return network([fc1, fc2, out], n_channels=C, time_steps=T)


def run_both(net, seed):
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    rng = np.random.default_rng(seed)
    steps = T + net.latency
    payload = rng.integers(0, 16, size=(N, T, C)) * (rng.random((N, T, C)) < 0.3)
    x = np.zeros((N, steps, C))
    x[:, :T] = payload
    model = FloatDelayNet(net)
    # record the spikes with one plain forward pass over all samples
    with torch.no_grad():
        model(torch.tensor(x, dtype=torch.float32))
    act = activity(net, payload, model.recorded)
    assert all(s.sum() > 0 for s in act.spikes), "test network must spike"
    loader = DataLoader(TensorDataset(torch.tensor(x, dtype=torch.float32),
                                      torch.zeros(N, dtype=torch.long)), batch_size=3)
    bench = Benchmark(TorchModel(model), loader, [], [], [[], [SynapticOperations]])
    nb = bench.run(quiet=True)["SynapticOperations"]
    return nb, estimate(net, act, load_profile("loihi2")), act, steps


def test_neurobench_effective_ops_equal_estimator_synops():
    net = random_net(0)
    nb, b, act, steps = run_both(net, 1)
    assert nb["Effective_MACs"] == pytest.approx(b.layers[0].synops, abs=1e-9)  # graded input
    assert nb["Effective_ACs"] == pytest.approx(b.layers[1].synops + b.layers[2].synops,
                                                abs=1e-9)
    assert nb["Effective_MACs"] + nb["Effective_ACs"] == pytest.approx(b.synops_per_sample)
    assert b.synops_per_sample > 0
    dense = sum(c.n_out * c.n_in * (c.max_delay + 1) * (steps + c.max_delay)
                for c in net.layers)
    assert nb["Dense"] == pytest.approx(dense)


def test_zero_weight_synapse_is_the_exact_difference():
    net = random_net(0, zero_weight=True)
    nb, b, act, _ = run_both(net, 1)
    pre = int(net.layers[1].pre[0])
    events_of_pre = act.spikes[0][:, :, pre].sum() / N
    assert events_of_pre > 0
    assert (b.layers[1].synops + b.layers[2].synops) - nb["Effective_ACs"] == pytest.approx(
        events_of_pre)
