"""The analysis statistics: neighbour definition, shuffle null, receptive fields, delay counts."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis_checkpoints import K, sparse_layer
from trainer.checkpoint import LayerSynapses
from trainer.analysis.delay_counts import connections_per_delay
from trainer.analysis.ei_clustering import (_within_group_shuffles, neighbour_pairs,
                                            sign_clustering)
from trainer.analysis.receptive_fields import (merged_sites, most_active_neurons,
                                               receptive_fields)


def _layer(d: dict) -> LayerSynapses:
    return LayerSynapses(d["name"], d["n_in"], d["n_out"], d["pre"].numpy(), d["post"].numpy(),
                         d["delay"].numpy(), d["weight"].numpy().astype(np.float64))


def _brute_pairs(post, pre, delay, k):
    """O(S^2) reference: all other sites of the neuron within the k-th nearest distance."""
    pairs = set()
    for a in range(post.size):
        others = [b for b in range(post.size) if b != a and post[b] == post[a]]
        if not others:
            continue
        d = {b: np.hypot(pre[a] - pre[b], delay[a] - delay[b]) for b in others}
        r = sorted(d.values())[min(k, len(others)) - 1]
        pairs |= {(a, b) for b in others if d[b] <= r + 1e-9}
    return pairs


@pytest.mark.parametrize("k", [1, 3, 8])
def test_neighbour_pairs_match_brute_force(k):
    rng = np.random.default_rng(k)
    for _ in range(4):
        s = int(rng.integers(2, 150))
        layer = LayerSynapses("x", 9, 6, rng.integers(0, 9, s), rng.integers(0, 6, s),
                              rng.integers(0, 7, s), rng.normal(size=s))
        post, pre, delay, _ = merged_sites(layer)
        i, m = neighbour_pairs(post, pre, delay, k)
        assert set(zip(i.tolist(), m.tolist())) == _brute_pairs(post, pre, delay, k)
        assert len(set(zip(i.tolist(), m.tolist()))) == i.size  # no duplicate pairs


def test_ties_are_all_included_on_a_grid():
    # one neuron, dense 5x5 grid: the centre's 4 nearest are at distance 1 and k=2 keeps all 4
    c, d = np.divmod(np.arange(25), 5)
    i, m = neighbour_pairs(np.zeros(25, np.int64), c, d, k=2)
    centre = 12
    got = sorted((c[m[i == centre]] * 5 + d[m[i == centre]]).tolist())
    assert got == [7, 11, 13, 17]


def test_observed_fraction_by_hand():
    # neuron 0: + + - along one channel (delays 0, 1, 2), k=1
    # pairs: 0->1 (+,+), 1->0 and 1->2 tie at distance 1 (+,+ and +,-), 2->1 (-,+)
    layer = LayerSynapses("x", 1, 1, np.zeros(3, np.int64), np.zeros(3, np.int64),
                          np.arange(3), np.array([0.5, 0.2, -0.3]))
    res = sign_clustering(layer, k=1, n_shuffles=20)
    assert res.n_pairs == 4
    assert res.observed == pytest.approx(2 / 4)
    assert (res.n_synapses, res.n_excitatory, res.n_inhibitory) == (3, 2, 1)


def test_duplicates_merge_and_zero_weights_are_excluded():
    # two synapses at the same (post, pre, delay) add; a cancelling pair and a zero weight drop
    layer = LayerSynapses("x", 4, 2, np.array([0, 0, 1, 1, 2, 3]), np.array([0, 0, 0, 0, 0, 1]),
                          np.array([1, 1, 2, 2, 0, 0]),
                          np.array([0.25, 0.5, 0.4, -0.4, -1.0, 0.0]))
    post, pre, delay, w = merged_sites(layer)
    assert post.tolist() == [0, 0, 0, 1] and pre.tolist() == [0, 1, 2, 3]
    assert w.tolist() == [0.75, 0.0, -1.0, 0.0]
    res = sign_clustering(layer, k=2, n_shuffles=10)
    assert (res.n_synapses, res.n_zero_weight_excluded, res.n_pairs) == (2, 2, 2)
    rf = receptive_fields(layer, K)
    assert rf.shape == (2, 4, K)
    assert rf[0, 0, 1] == 0.75 and rf[0, 1, 2] == 0.0 and rf[0, 2, 0] == -1.0
    assert np.count_nonzero(rf) == 2


def test_shuffles_permute_within_each_neuron_only():
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(5), [1, 7, 3, 20, 9])
    sign = rng.choice([-1.0, 1.0], size=group.size)
    shuffled = _within_group_shuffles(sign, group, 50, rng)
    assert shuffled.shape == (group.size, 50)
    for g in range(5):
        sums = shuffled[group == g].sum(axis=0)
        assert np.all(sums == sign[group == g].sum())
    assert not np.all(shuffled == sign[:, None])  # something moved


def test_clustered_signs_separate_from_random_signs():
    rng = np.random.default_rng(0)
    clustered = _layer(sparse_layer("fc1", 40, 32, 0.1, "clustered", rng))
    random = _layer(sparse_layer("fc1", 40, 32, 0.1, "random", rng))
    c = sign_clustering(clustered)
    r = sign_clustering(random)
    assert c.n_synapses == r.n_synapses == 32 * 100
    assert c.z > 10, c
    assert abs(r.z) < 3, r
    assert c.observed > c.null_mean + 0.1
    # the null sits at the chance level set by each neuron's E/I balance
    assert r.null_mean == pytest.approx(r.observed, abs=4 * r.null_std)


def test_same_seed_same_null_and_other_seed_differs():
    rng = np.random.default_rng(3)
    layer = _layer(sparse_layer("fc1", 20, 8, 0.2, "random", rng))
    a, b = sign_clustering(layer, seed=5), sign_clustering(layer, seed=5)
    assert np.array_equal(a.null, b.null) and a.z == b.z
    assert not np.array_equal(a.null, sign_clustering(layer, seed=6).null)


def test_single_sign_layer_has_undefined_z_with_a_reason():
    layer = LayerSynapses("x", 3, 1, np.arange(3), np.zeros(3, np.int64), np.zeros(3, np.int64),
                          np.ones(3))
    res = sign_clustering(layer, n_shuffles=10)
    assert res.observed == 1.0 and res.null_std == 0.0 and res.z is None
    assert "zero spread" in res.note
    assert res.to_json()["z"] is None


def test_neurons_with_at_most_k_plus_1_sites_are_shuffle_invariant():
    # 2 neurons x 5 sites, mixed signs, k=8: every other site is a neighbour -> no spread
    layer = LayerSynapses("x", 5, 2, np.tile(np.arange(5), 2), np.repeat([0, 1], 5),
                          np.zeros(10, np.int64), np.array([1, -1, 1, 1, -1] * 2, float))
    res = sign_clustering(layer, k=8, n_shuffles=10)
    assert res.n_neurons == res.n_neurons_shuffle_invariant == 2 and res.n_pairs == 40
    assert res.observed == pytest.approx(16 / 40) and res.null_std == 0.0 and res.z is None
    assert "at most k + 1" in res.note
    res = sign_clustering(layer, k=1, n_shuffles=50)
    assert res.n_neurons_shuffle_invariant == 0 and res.null_std > 0 and res.z is not None


def test_layer_without_pairs():
    layer = LayerSynapses("x", 3, 3, np.arange(3), np.arange(3), np.zeros(3, np.int64),
                          np.ones(3))
    res = sign_clustering(layer, n_shuffles=10)
    assert res.n_pairs == 0 and res.observed is None and res.z is None
    assert "no neuron has two" in res.note


def test_bad_parameters_are_rejected():
    layer = LayerSynapses("x", 1, 1, np.zeros(2, np.int64), np.zeros(2, np.int64),
                          np.arange(2), np.ones(2))
    with pytest.raises(ValueError, match="k \\(neighbours per synapse\\) must be >= 1"):
        sign_clustering(layer, k=0)
    with pytest.raises(ValueError, match="n_shuffles must be >= 2"):
        sign_clustering(layer, n_shuffles=1)


def test_dense_reference_sized_layer():
    # 40 inputs x 256 neurons x K=25, every site present: 256,000 synapses, interior sites have
    # exactly 8 neighbours at k=8 (4 at distance 1, 4 at sqrt 2)
    post, pre, delay = (a.ravel() for a in np.meshgrid(np.arange(256), np.arange(40),
                                                       np.arange(25), indexing="ij"))
    rng = np.random.default_rng(0)
    layer = LayerSynapses("fc1", 40, 256, pre, post, delay, rng.normal(size=post.size))
    res = sign_clustering(layer, k=8, n_shuffles=50)  # timing with 200: bench/bench_analysis_clustering.py
    assert res.n_synapses == 256_000 and res.n_neurons == 256
    # per neuron: 38*23 interior sites x 8 pairs; edges and corners add ties (k-th distance 2
    # or sqrt 5 includes more) -- the total is at least 8 per site
    assert res.n_pairs >= 8 * 256_000
    assert abs(res.z) < 4


def test_most_active_neurons_by_total_abs_weight():
    layer = LayerSynapses("x", 2, 4, np.array([0, 1, 0, 0, 1]), np.array([0, 0, 1, 2, 2]),
                          np.zeros(5, np.int64), np.array([0.5, -0.5, -2.0, 0.25, 0.75]))
    # totals: n0 1.0, n1 2.0, n2 1.0, n3 0 -> n1, then the tie n0/n2 by index; n3 never
    assert most_active_neurons(layer, 10).tolist() == [1, 0, 2]
    assert most_active_neurons(layer, 2).tolist() == [1, 0]


def test_connections_per_delay_counts():
    layer = LayerSynapses("x", 2, 2, np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]),
                          np.array([0, 2, 2, 2]), np.array([1.0, -3.0, 0.0, 1.0]))
    c = connections_per_delay(layer, 4)
    assert c["total"] == [1, 0, 3, 0]
    assert c["excitatory"] == [1, 0, 1, 0]
    assert c["inhibitory"] == [0, 0, 1, 0]
    assert c["zero_weight"] == [0, 0, 1, 0]
    assert c["mean_abs_weight"] == [1.0, None, 4.0 / 3, None]
    with pytest.raises(ValueError, match="delay 2 >= kernel size 2"):
        connections_per_delay(layer, 2)
