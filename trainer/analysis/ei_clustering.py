"""Do excitation and inhibition group together in (input channel, delay) space?

Definition (per connection layer):

- Sites: the synapses of each postsynaptic neuron merged per (pre, delay) position (weights of
  duplicates add, see `receptive_fields.merged_sites`); sites whose weight is exactly 0 are
  excluded. A site's sign is + (excitatory) or - (inhibitory).
- Neighbours: for site i of neuron j, let r_i be the Euclidean distance in (channel, delay) space
  (units: 1 channel, 1 step) from i to its k-th nearest *other* site of the same neuron j (to its
  farthest one if j has fewer than k other sites). The neighbours of i are ALL other sites of j
  within distance r_i: every site tied with the k-th is included, so no arbitrary tie-breaking is
  needed and the result is deterministic. Neurons with a single site contribute nothing.
- Statistic: over all directed (site, neighbour) pairs of the layer, the fraction whose two signs
  agree. A neuron with at most k + 1 sites has all its other sites as neighbours: its pairs
  do not depend on the arrangement (they only dilute the fractions, z is unchanged), so very
  sparse layers (few synapses per neuron) carry little information; `n_neurons_shuffle_invariant`
  counts such neurons.
- Null: the same statistic after permuting the signs uniformly among each neuron's own sites
  (positions fixed, each neuron's excitatory/inhibitory count preserved), `n_shuffles` times from
  `numpy.random.default_rng(seed)`. z = (observed - null mean) / null std (std with ddof=1);
  p = (1 + #{null >= observed}) / (1 + n_shuffles), one-sided.

A positive z means same-sign synapses sit next to each other more than chance given each
neuron's E/I balance. Caveat: if signs are fixed per presynaptic channel (Dale's principle),
neighbours along the delay axis share a sign by construction and z is large even at
initialisation; compare against the initial checkpoint (the analysis reports both).

Complexity, S sites and P ~ k*S pairs: KD-tree build O(S log S), neighbour queries
O(S (k + t) log S) with t the extra ties; the null costs O(n_shuffles * (S + P)) via a sparse
(S x S, P non-zeros) matrix product on batches of shuffles; memory O(P + 32 S). A dense
40 x 256 layer with K = 25 (S = 256,000, P ~ 2.1 M) takes about a second for 200 shuffles.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sparse
from scipy.spatial import cKDTree
from tqdm import tqdm

from trainer.checkpoint import LayerSynapses

from .receptive_fields import merged_sites

DEFAULT_K = 8
DEFAULT_SHUFFLES = 200
DEFAULT_SEED = 0
_TIE_TOL = 1e-9  # distances are square roots of integers: ties are exact, this only guards rounding


@dataclass
class ClusteringResult:
    """Sign agreement of nearest neighbours in (channel, delay) against a shuffle null."""

    k: int
    n_shuffles: int
    seed: int
    n_synapses: int  # non-zero sites (merged per (post, pre, delay)) entering the statistic
    n_excitatory: int
    n_inhibitory: int
    n_zero_weight_excluded: int  # sites whose (summed) weight is exactly 0
    n_neurons: int  # neurons with >= 2 non-zero sites (the only ones that form pairs)
    # neurons with 2..k+1 sites: all their other sites are neighbours, so shuffling cannot
    # change their pairs; they dilute observed and shuffled fractions alike and leave z unchanged
    n_neurons_shuffle_invariant: int
    n_pairs: int  # directed (site, neighbour) pairs
    observed: float | None  # fraction of pairs whose signs agree; None if there are no pairs
    null_mean: float | None
    null_std: float | None
    z: float | None  # None when the null has zero spread (see `note`)
    p_value: float | None
    note: str | None = None
    null: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (no NaN: undefined values are None with a `note`)."""
        return {
            "observed_fraction": self.observed, "shuffle_mean": self.null_mean,
            "shuffle_std": self.null_std, "z": self.z, "p_value": self.p_value,
            "n_synapses": self.n_synapses, "n_excitatory": self.n_excitatory,
            "n_inhibitory": self.n_inhibitory,
            "n_zero_weight_excluded": self.n_zero_weight_excluded,
            "n_neurons": self.n_neurons,
            "n_neurons_shuffle_invariant": self.n_neurons_shuffle_invariant,
            "n_pairs": self.n_pairs,
            "k": self.k, "n_shuffles": self.n_shuffles, "seed": self.seed, "note": self.note,
        }


def neighbour_pairs(post: np.ndarray, pre: np.ndarray, delay: np.ndarray,
                    k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray]:
    """Directed neighbour pairs (i, m) of distinct sites, as defined in the module docstring.

    post, pre, delay: (S,) integer coordinates of distinct sites. Returns two int64 arrays
    (P,), sorted by i then m.
    """
    if k < 1:
        raise ValueError(f"k (neighbours per synapse) must be >= 1, got {k}")
    s = post.size
    if s < 2:
        e = np.zeros(0, np.int64)
        return e, e
    span_c = float(pre.max() - pre.min())
    span_d = float(delay.max() - delay.min())
    diam = float(np.hypot(span_c, span_d))
    # Neurons are separated along a third axis by more than any within-neuron distance, and the
    # queries are bounded by `bound`, so a site never finds another neuron's site.
    sep = 2.0 * diam + 2.0
    bound = diam + 0.5
    xyz = np.column_stack([pre.astype(np.float64), delay.astype(np.float64),
                           post.astype(np.float64) * sep])
    tree = cKDTree(xyz)
    # First query: 2k + 2 neighbours (self included), enough for the usual ties on a grid.
    kq = min(2 * k + 2, s)
    d_t, m_t = tree.query(xyz, k=kq, distance_upper_bound=bound)
    d_t, m_t = d_t.reshape(s, kq), m_t.reshape(s, kq)
    n_found = np.isfinite(d_t).sum(axis=1)  # includes the site itself (column 0, distance 0)
    # radius: distance to the k-th other site, or to the farthest one if the neuron has fewer
    col = np.minimum(k, n_found - 1)
    radius = np.where(n_found >= 2, d_t[np.arange(s), col], -1.0)
    rows_i: list[np.ndarray] = []
    rows_m: list[np.ndarray] = []
    todo = np.arange(s)
    while True:
        r_t = radius[todo]
        keep = np.isfinite(d_t) & (d_t <= r_t[:, None] + _TIE_TOL) & (m_t != todo[:, None])
        # if the last returned neighbour is still within the radius, more ties may follow
        more = np.isfinite(d_t[:, -1]) & (d_t[:, -1] <= r_t + _TIE_TOL) & (kq < s)
        done = ~more
        rows_i.append(np.repeat(todo[done], keep[done].sum(axis=1)))
        rows_m.append(m_t[done][keep[done]])
        if not more.any():
            break
        todo = todo[more]
        kq = min(2 * kq, s)
        d_t, m_t = tree.query(xyz[todo], k=kq, distance_upper_bound=bound)
        d_t, m_t = d_t.reshape(todo.size, kq), m_t.reshape(todo.size, kq)
    i = np.concatenate(rows_i).astype(np.int64)
    m = np.concatenate(rows_m).astype(np.int64)
    order = np.lexsort((m, i))
    return i[order], m[order]


def _within_group_shuffles(sign: np.ndarray, group: np.ndarray, n: int,
                           rng: np.random.Generator) -> np.ndarray:
    """(S, n) float64: columns are `sign` permuted uniformly within each group.

    `group` must be sorted ascending (sites sorted by neuron). A global random permutation
    followed by a stable sort by group leaves each group's members in uniformly random order.
    """
    g = group.astype(np.uint16) if group.max(initial=0) < 2 ** 16 else group
    out = np.empty((n, sign.size))
    for row in range(n):
        perm = rng.permutation(sign.size)
        np.take(sign, perm[np.argsort(g[perm], kind="stable")], out=out[row])
    return np.ascontiguousarray(out.T)


def sign_clustering(layer: LayerSynapses, k: int = DEFAULT_K,
                    n_shuffles: int = DEFAULT_SHUFFLES, seed: int = DEFAULT_SEED,
                    progress: bool = False) -> ClusteringResult:
    """Nearest-neighbour sign agreement of one layer against the within-neuron shuffle null."""
    if k < 1:
        raise ValueError(f"k (neighbours per synapse) must be >= 1, got {k}")
    if n_shuffles < 2:
        raise ValueError(f"n_shuffles must be >= 2 to estimate a spread, got {n_shuffles}")
    post, pre, delay, w = merged_sites(layer)
    nonzero = w != 0
    n_zero = int((~nonzero).sum())
    post, pre, delay, w = post[nonzero], pre[nonzero], delay[nonzero], w[nonzero]
    sign = np.where(w > 0, 1.0, -1.0)
    per_neuron = np.bincount(post, minlength=layer.n_out)
    base: dict[str, Any] = dict(k=k, n_shuffles=n_shuffles, seed=seed, n_synapses=int(w.size),
                n_excitatory=int((w > 0).sum()), n_inhibitory=int((w < 0).sum()),
                n_zero_weight_excluded=n_zero, n_neurons=int((per_neuron >= 2).sum()),
                n_neurons_shuffle_invariant=int(((per_neuron >= 2) & (per_neuron <= k + 1)).sum()))
    i, m = neighbour_pairs(post, pre, delay, k)
    if i.size == 0:
        return ClusteringResult(**base, n_pairs=0, observed=None, null_mean=None,
                                null_std=None, z=None, p_value=None,
                                note="no neuron has two non-zero synapses: no pairs to compare")
    observed = float(np.mean(sign[i] == sign[m]))
    adj = sparse.csr_matrix((np.ones(i.size), (i, m)), shape=(w.size, w.size))
    rng = np.random.default_rng(seed)
    batch = int(max(1, min(32, 2e7 // max(w.size, 1))))
    null = np.empty(n_shuffles)
    starts = range(0, n_shuffles, batch)
    for start in tqdm(starts, desc=f"shuffles {layer.name}", unit="batch", disable=not progress):
        nb = min(batch, n_shuffles - start)
        s_mat = _within_group_shuffles(sign, post, nb, rng)
        dot = np.einsum("ij,ij->j", s_mat, adj @ s_mat)  # sum over pairs of s_i * s_m
        null[start:start + nb] = (i.size + dot) / (2.0 * i.size)
    mean, std = float(null.mean()), float(null.std(ddof=1))
    p = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_shuffles))
    if std > 1e-12 * max(abs(mean), 1.0):  # below that the spread is rounding noise
        z, note = float((observed - mean) / std), None
    else:
        z = None
        note = ("the shuffle null has zero spread (in every neuron the non-zero synapses share "
                "one sign, or there are at most k + 1 of them): z is undefined")
    return ClusteringResult(**base, n_pairs=int(i.size), observed=observed, null_mean=mean,
                            null_std=std, z=z, p_value=p, note=note, null=null)
