"""Lava processes this runtime adds around the stock LIF and delay connections.

- PayloadSource: streams many samples of graded payloads from a .npy file (memory-mapped in the
  worker), one sample per window of `window` steps per lane, zeros after the sample's T steps
  (padding).
- Recorder: keeps window steps first_step..keep-1 of every window of what it receives (0
  before first_step: there the population still runs on from the previous window) and writes
  them to a .npy file at the last step (reading Lava Vars back costs ~27 us per element; this
  does not).
- ReadoutLIF: a LIFReset population that never spikes and sends its voltage v every step
  (exactly Lava's LIF dynamics, without the threshold test); with spiking=True (a spiking
  output layer) it is LIFReset itself (threshold test, v = 0 where it spikes, spikes on s_out)
  and also sends v after that reset.
- LanedDelayDense, LanedDelaySparse: Lava's DelayDense / DelaySparse with a lane axis on their
  ports (s_in (lanes, n_in), a_out (lanes, n_out)); only this runtime's fast models
  (fast_models.py) run them.

With `lanes` = L > 1 (lava_runtime.lava_graph.lanes) every port has shape (L, n) and lane j of
round r carries sample r * L + j; with L = 1 ports are (n,) as Lava's stock models expect.

Importing this module imports Lava (worker side only).
"""
from __future__ import annotations

import os

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import DelayDense
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat
from lava.proc.lif.process import LIFReset
from lava.proc.sparse.process import DelaySparse

from lava_runtime.lava_graph.lanes import lane_shape


class PayloadSource(AbstractProcess):
    """Graded-spike source. `path` holds payloads of shape (rounds, time_steps, lanes,
    n_channels) (graph.lane_payloads): round r's step k (k < time_steps) is sent at Lava step
    r * window + k + 1; other steps send zeros."""

    def __init__(self, *, path: str, n_channels: int, time_steps: int, window: int,
                 lanes: int = 1, **kwargs) -> None:
        super().__init__(path=path, n_channels=n_channels, time_steps=time_steps,
                         window=window, lanes=lanes, **kwargs)
        self.s_out = OutPort(shape=lane_shape(lanes, n_channels))


class _SourceModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._data = np.load(proc_params["path"], mmap_mode="r")  # (rounds, T, L, C)
        self._window = int(proc_params["window"])
        self._T = int(proc_params["time_steps"])
        self._shape = lane_shape(int(proc_params["lanes"]), int(proc_params["n_channels"]))
        self._zeros = np.zeros(self._shape, dtype=self._dtype)

    def run_spk(self):
        r, k = divmod(self.time_step - 1, self._window)
        if r < self._data.shape[0] and k < self._T:
            self.s_out.send(np.asarray(self._data[r, k], dtype=self._dtype).reshape(self._shape))
        else:
            self.s_out.send(self._zeros)


@implements(proc=PayloadSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySourceFixed(_SourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    _dtype = np.int32


@implements(proc=PayloadSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySourceFloat(_SourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    _dtype = np.float64


class Recorder(AbstractProcess):
    """Records the first `keep` steps of the window of each of `n_samples` samples into `path`
    (.npy, shape (n_samples, keep, n), dtype `dtype`), written at the last step. With `lanes`
    L > 1 it receives (L, n) per step, lane j of round r being sample r * L + j (lanes past
    n_samples are dropped). Window steps before `first_step` (the step at which the recorded
    population resets) are recorded as 0."""

    def __init__(self, *, n: int, path: str, n_samples: int, window: int, keep: int,
                 dtype: str, first_step: int = 0, lanes: int = 1, **kwargs) -> None:
        super().__init__(n=n, path=path, n_samples=n_samples, window=window, keep=keep,
                         dtype=dtype, first_step=first_step, lanes=lanes, **kwargs)
        self.a_in = InPort(shape=lane_shape(lanes, n))


class _RecorderModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self._path = p["path"]
        self._window, self._keep = int(p["window"]), int(p["keep"])
        self._first = int(p["first_step"])
        self._n, self._lanes = int(p["n_samples"]), int(p["lanes"])
        rounds = -(-self._n // self._lanes)
        self._last = rounds * self._window
        self._buf = np.zeros((rounds * self._lanes, self._keep, int(p["n"])),
                             dtype=np.dtype(p["dtype"]))

    def run_spk(self):
        x = self.a_in.recv()
        t = self.time_step
        r, k = divmod(t - 1, self._window)
        if t <= self._last and self._first <= k < self._keep:
            lo = r * self._lanes
            self._buf[lo:lo + self._lanes, k] = x.reshape(self._lanes, -1)
        if t == self._last:
            tmp = self._path + ".tmp.npy"
            np.save(tmp, self._buf[:self._n])
            os.replace(tmp, self._path)


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRecorderFixed(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRecorderFloat(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


class LanedDelayDense(DelayDense):
    """DelayDense whose ports carry `lanes` independent copies: s_in (lanes, n_in), a_out
    (lanes, n_out); weights and delays are shared by all lanes (arguments as DelayDense)."""

    def __init__(self, *, weights, lanes: int, **kwargs) -> None:
        super().__init__(weights=weights, lanes=lanes, **kwargs)
        n_out, n_in = np.shape(weights)
        self.s_in = InPort(shape=(lanes, n_in))
        self.a_out = OutPort(shape=(lanes, n_out))


class LanedDelaySparse(DelaySparse):
    """DelaySparse whose ports carry `lanes` independent copies (see LanedDelayDense)."""

    def __init__(self, *, weights, lanes: int, **kwargs) -> None:
        super().__init__(weights=weights, lanes=lanes, **kwargs)
        n_out, n_in = weights.shape
        self.s_in = InPort(shape=(lanes, n_in))
        self.a_out = OutPort(shape=(lanes, n_out))


class ReadoutLIF(LIFReset):
    """LIF readout: LIFReset dynamics, v sent on `v_out` each step. spiking=False (default): no
    threshold test, s_out sends zeros; spiking=True: spike if v > vth (fixed_pt: vth << 6),
    then v = 0 where it spiked, as LIFReset, spikes on s_out and v after the reset on v_out."""

    def __init__(self, *, spiking: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.proc_params["spiking"] = bool(spiking)
        self.v_out = OutPort(shape=kwargs["shape"])


def _reset_due(model) -> bool:
    return (model.time_step % model.reset_interval) == model.reset_offset


@implements(proc=ReadoutLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyReadoutLifFixed(AbstractPyLifModelFixed):
    """Lava's bit-accurate LIF update (AbstractPyLifModelFixed.subthr_dynamics), then v out."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = proc_params["reset_offset"] % self.reset_interval
        self.spiking = bool(proc_params.get("spiking", False))

    def run_spk(self):
        a_in_data = self.a_in.recv()
        if _reset_due(self):
            self.u *= 0
            self.v *= 0
        self.scale_bias()
        self.subthr_dynamics(activation_in=a_in_data)
        if self.spiking:  # PyLifResetModelBitAcc: v > vth << 6, then v = 0 where it spiked
            spikes = self.v > np.left_shift(self.vth, self.vth_shift)
            self.v[spikes] = 0
        else:
            spikes = np.zeros_like(self.v)
        self.v_out.send(self.v)
        self.s_out.send(spikes)


@implements(proc=ReadoutLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyReadoutLifFloat(AbstractPyLifModelFloat):
    """Lava's floating-point LIF update, then v out."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = proc_params["reset_offset"] % self.reset_interval
        self.spiking = bool(proc_params.get("spiking", False))

    def run_spk(self):
        a_in_data = self.a_in.recv()
        if _reset_due(self):
            self.u *= 0
            self.v *= 0
        self.subthr_dynamics(activation_in=a_in_data)
        if self.spiking:  # PyLifResetModelFloat: v > vth, then v = 0 where it spiked
            spikes = self.v > self.vth
            self.v[spikes] = 0
        else:
            spikes = np.zeros_like(self.v)
        self.v_out.send(self.v)
        self.s_out.send(spikes)
