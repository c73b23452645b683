"""Fast ProcessModels for Lava's DelayDense and DelaySparse (fixed_pt and floating_pt), and for
this runtime's LanedDelayDense / LanedDelaySparse (the same with a lane axis, processes.py).

The stock models rebuild a ((max_delay + 1) * n_out, n_in) delay-weight matrix with np.where on
every step. These build it once, as the CSR transpose of M (n_in, (max_delay + 1) * n_out), so a
step costs one sparse product over the existing synapses times the lanes (a step without input
costs nothing); a ring buffer of shape (max_delay + 1, n_out, lanes) replaces np.roll, every
lane being computed exactly as a single-lane model computes it. Sums are float64 in both
precisions: fixed_pt sums are integers below 2**31 (deployed.validate), hence exact, and
the weights carry the factor 2**weight_exp, so Lava's arithmetic right shift of each
(delay, post) sum is a floor. Results are identical to the
stock models (tests check it), with one addition: when the process was given
`buffer_reset_interval` (> 0) and `buffer_reset_offset`, the delay buffer is cleared at the
start of every step with time_step % interval == offset, before that step's output is sent and
its input received: everything received before that step is dropped, that step's input is
kept. lava_runtime.lava_graph.graph uses it so that a layer only ever sees what its presynaptic
layer emitted after its own reset (stock models ignore these parameters; with a network that
drains during its padding the clear changes nothing).

Select them with `run_config(backend, fast_models=True)` in lava_runtime.lava_graph.graph
(Loihi2SimCfg(exception_proc_model_map={DelayDense: ..., DelaySparse: ...})).
Importing this module imports Lava (worker side only).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import DelayDense
from lava.proc.sparse.process import DelaySparse
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from lava_runtime.lava_graph.procs.processes import LanedDelayDense, LanedDelaySparse


class _FastDelayBase(PyLoihiProcessModel):
    fixed = True

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._ready = False
        self._clear_every = int(proc_params.get("buffer_reset_interval", 0) or 0)
        self._clear_at = int(proc_params.get("buffer_reset_offset", 0) or 0)
        if self._clear_every:
            self._clear_at %= self._clear_every

    def _setup(self) -> None:
        w = self.weights.toarray() if sp.issparse(self.weights) else np.asarray(self.weights)
        d = self.delays.toarray() if sp.issparse(self.delays) else np.asarray(self.delays)
        d = np.broadcast_to(d, w.shape).astype(np.int64)
        if self.fixed:
            mode = self.proc_params.get("sign_mode") or determine_sign_mode(w)
            w = clip_weights(w, mode, num_bits=8)
            w = truncate_weights(w, mode, self.proc_params.get("num_weight_bits", 8))
            if d.size and d.max() > 63:
                raise ValueError(f"delays expect values between 0 and 63 for Loihi, got "
                                 f"max {d.max()}")
            exp = int(self.proc_params.get("weight_exp", 0))
            # float64 holds Lava's int32 sums exactly (deployed.validate bounds them below
            # 2**31); weights pre-scaled by 2**weight_exp (exact) leave only the floor of a
            # right shift to apply
            w = w.astype(np.float64) * 2.0 ** exp
            self._floor = exp < 0
        else:
            self._floor = False
        n_out, n_in = w.shape
        self._nd = self.a_buff.shape[-1]  # max_delay + 1 (as the process sized its buffer)
        self._n_out = n_out
        post, pre = np.nonzero(w)
        cols = d[post, pre] * n_out + post
        # M^T in CSR: row (d * n_out + post) lists the inputs reaching post with delay d
        self._m = sp.csr_matrix((w[post, pre].astype(np.float64), (cols, pre)),
                                shape=(self._nd * n_out, n_in))
        lanes = self.proc_params.get("lanes")  # given to the Laned processes only
        self._laned = lanes is not None  # ports (lanes, n) rather than (n,)
        self._lanes = int(lanes) if self._laned else 1
        self._ring = np.zeros((self._nd, n_out, self._lanes))
        self._head = 0
        self._graded = int(np.asarray(self.num_message_bits).item()) > 0
        self._ready = True

    def run_spk(self):
        if not self._ready:
            self._setup()
        if self._clear_every and self.time_step % self._clear_every == self._clear_at:
            self._ring[:] = 0
        ring, nd, h = self._ring, self._nd, self._head
        out = ring[h]  # (n_out, lanes)
        self.a_out.send(out.T if self._laned else out[:, 0])
        ring[h] = 0
        h = self._head = (h + 1) % nd
        s_in = self.s_in.recv()
        if not self._graded:
            s_in = s_in.astype(bool)
        if not s_in.any():
            return
        # M^T @ s (s: (n_in, lanes)): work proportional to synapses x lanes, not to
        # n_in * nd * n_out
        s = np.ascontiguousarray(s_in.reshape(self._lanes, -1).T, dtype=np.float64)
        acc = (self._m @ s).reshape(nd, self._n_out, self._lanes)
        if self._floor:  # Lava's arithmetic right shift of each (delay, post) sum
            np.floor(acc, out=acc)
        # acc[d] leaves in 1 + d steps, from ring row (h + d) % nd: two contiguous blocks
        ring[h:] += acc[:nd - h]
        ring[:h] += acc[nd - h:]


class _FixedPorts:
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=16)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, int, precision=5)


class _FloatPorts:
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, int, precision=5)


@implements(proc=DelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "fixed_pt")
class FastDelayDenseFixed(_FastDelayBase):
    s_in: PyInPort = _FixedPorts.s_in
    a_out: PyOutPort = _FixedPorts.a_out
    a_buff: np.ndarray = _FixedPorts.a_buff
    num_message_bits: np.ndarray = _FixedPorts.num_message_bits
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    delays: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=6)


@implements(proc=DelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "floating_pt")
class FastDelayDenseFloat(_FastDelayBase):
    fixed = False
    s_in: PyInPort = _FloatPorts.s_in
    a_out: PyOutPort = _FloatPorts.a_out
    a_buff: np.ndarray = _FloatPorts.a_buff
    num_message_bits: np.ndarray = _FloatPorts.num_message_bits
    weights: np.ndarray = LavaPyType(np.ndarray, float)
    delays: np.ndarray = LavaPyType(np.ndarray, int)


@implements(proc=DelaySparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "fixed_pt")
class FastDelaySparseFixed(_FastDelayBase):
    s_in: PyInPort = _FixedPorts.s_in
    a_out: PyOutPort = _FixedPorts.a_out
    a_buff: np.ndarray = _FixedPorts.a_buff
    num_message_bits: np.ndarray = _FixedPorts.num_message_bits
    weights: sp.csr_matrix = LavaPyType(sp.csr_matrix, np.int32, precision=8)
    delays: sp.csr_matrix = LavaPyType(sp.csr_matrix, np.int32, precision=6)


@implements(proc=DelaySparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "floating_pt")
class FastDelaySparseFloat(_FastDelayBase):
    fixed = False
    s_in: PyInPort = _FloatPorts.s_in
    a_out: PyOutPort = _FloatPorts.a_out
    a_buff: np.ndarray = _FloatPorts.a_buff
    num_message_bits: np.ndarray = _FloatPorts.num_message_bits
    weights: sp.csr_matrix = LavaPyType(sp.csr_matrix, float)
    delays: sp.csr_matrix = LavaPyType(sp.csr_matrix, int)


@implements(proc=LanedDelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "fixed_pt")
class FastLanedDelayDenseFixed(_FastDelayBase):
    s_in: PyInPort = _FixedPorts.s_in
    a_out: PyOutPort = _FixedPorts.a_out
    a_buff: np.ndarray = _FixedPorts.a_buff
    num_message_bits: np.ndarray = _FixedPorts.num_message_bits
    weights: np.ndarray = FastDelayDenseFixed.weights
    delays: np.ndarray = FastDelayDenseFixed.delays


@implements(proc=LanedDelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "floating_pt")
class FastLanedDelayDenseFloat(_FastDelayBase):
    fixed = False
    s_in: PyInPort = _FloatPorts.s_in
    a_out: PyOutPort = _FloatPorts.a_out
    a_buff: np.ndarray = _FloatPorts.a_buff
    num_message_bits: np.ndarray = _FloatPorts.num_message_bits
    weights: np.ndarray = FastDelayDenseFloat.weights
    delays: np.ndarray = FastDelayDenseFloat.delays


@implements(proc=LanedDelaySparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "fixed_pt")
class FastLanedDelaySparseFixed(_FastDelayBase):
    s_in: PyInPort = _FixedPorts.s_in
    a_out: PyOutPort = _FixedPorts.a_out
    a_buff: np.ndarray = _FixedPorts.a_buff
    num_message_bits: np.ndarray = _FixedPorts.num_message_bits
    weights: sp.csr_matrix = FastDelaySparseFixed.weights
    delays: sp.csr_matrix = FastDelaySparseFixed.delays


@implements(proc=LanedDelaySparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fast", "floating_pt")
class FastLanedDelaySparseFloat(_FastDelayBase):
    fixed = False
    s_in: PyInPort = _FloatPorts.s_in
    a_out: PyOutPort = _FloatPorts.a_out
    a_buff: np.ndarray = _FloatPorts.a_buff
    num_message_bits: np.ndarray = _FloatPorts.num_message_bits
    weights: sp.csr_matrix = FastDelaySparseFloat.weights
    delays: sp.csr_matrix = FastDelaySparseFloat.delays


FAST_MODELS = {
    "fixed_pt": {DelayDense: FastDelayDenseFixed, DelaySparse: FastDelaySparseFixed,
                 LanedDelayDense: FastLanedDelayDenseFixed,
                 LanedDelaySparse: FastLanedDelaySparseFixed},
    "floating_pt": {DelayDense: FastDelayDenseFloat, DelaySparse: FastDelaySparseFloat,
                    LanedDelayDense: FastLanedDelayDenseFloat,
                    LanedDelaySparse: FastLanedDelaySparseFloat},
}
