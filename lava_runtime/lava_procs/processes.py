"""Lava processes this runtime adds around the stock LIF and delay connections.

- PayloadSource: streams many samples of graded payloads from a .npy file (memory-mapped in the
  worker), one sample per window of `window` steps, zeros after the sample's T steps (padding).
- Recorder: keeps window steps first_step..keep-1 of every window of what it receives (0
  before first_step: there the population still runs on from the previous window) and writes
  them to a .npy file at the last step (reading Lava Vars back costs ~27 us per element; this
  does not).
- ReadoutLIF: a LIFReset population that never spikes and sends its voltage v every step
  (exactly Lava's LIF dynamics, without the threshold test).

Importing this module imports Lava (worker side only).
"""
from __future__ import annotations

import os
import time

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat
from lava.proc.lif.process import LIFReset


class PayloadSource(AbstractProcess):
    """Graded-spike source: sample i's step k (k < time_steps) is sent at Lava step
    i * window + k + 1; other steps send zeros."""

    def __init__(self, *, path: str, n_channels: int, n_samples: int, time_steps: int,
                 window: int, **kwargs) -> None:
        super().__init__(path=path, n_channels=n_channels, n_samples=n_samples,
                         time_steps=time_steps, window=window, **kwargs)
        self.s_out = OutPort(shape=(n_channels,))


class _SourceModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._data = np.load(proc_params["path"], mmap_mode="r")  # (N, T, C)
        self._window = int(proc_params["window"])
        self._T = int(proc_params["time_steps"])
        self._zeros = np.zeros(int(proc_params["n_channels"]), dtype=self._dtype)

    def run_spk(self):
        i, k = divmod(self.time_step - 1, self._window)
        if i < self._data.shape[0] and k < self._T:
            self.s_out.send(np.asarray(self._data[i, k], dtype=self._dtype))
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
    """Records the first `keep` steps of each of `n_samples` windows into `path` (.npy,
    shape (n_samples, keep, n), dtype `dtype`), written at the last step. Window steps before
    `first_step` (the step at which the recorded population resets) are recorded as 0.

    `fault` ("raise" or "hang", with `fault_step`) makes the model fail on purpose: it exists
    to test that a failing or hanging run is stopped and cleaned up."""

    def __init__(self, *, n: int, path: str, n_samples: int, window: int, keep: int,
                 dtype: str, first_step: int = 0, fault: str | None = None,
                 fault_step: int = 1, **kwargs) -> None:
        super().__init__(n=n, path=path, n_samples=n_samples, window=window, keep=keep,
                         dtype=dtype, first_step=first_step, fault=fault,
                         fault_step=fault_step, **kwargs)
        self.a_in = InPort(shape=(n,))


class _RecorderModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self._path = p["path"]
        self._window, self._keep = int(p["window"]), int(p["keep"])
        self._first = int(p["first_step"])
        self._n = int(p["n_samples"])
        self._last = self._n * self._window
        self._buf = np.zeros((self._n, self._keep, int(p["n"])), dtype=np.dtype(p["dtype"]))
        self._fault, self._fault_step = p["fault"], int(p["fault_step"])

    def run_spk(self):
        x = self.a_in.recv()
        t = self.time_step
        if self._fault and t == self._fault_step:
            if self._fault == "raise":
                raise RuntimeError(f"Recorder fault injected at step {t}")
            while True:  # "hang": never return, like a deadlocked Lava run
                time.sleep(1.0)
        i, k = divmod(t - 1, self._window)
        if i < self._n and self._first <= k < self._keep:
            self._buf[i, k] = x
        if t == self._last:
            tmp = self._path + ".tmp.npy"
            np.save(tmp, self._buf)
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


class ReadoutLIF(LIFReset):
    """Non-spiking LIF readout: LIFReset dynamics, no threshold, v sent on `v_out` each step."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
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

    def run_spk(self):
        a_in_data = self.a_in.recv()
        if _reset_due(self):
            self.u *= 0
            self.v *= 0
        self.scale_bias()
        self.subthr_dynamics(activation_in=a_in_data)
        self.v_out.send(self.v)
        self.s_out.send(np.zeros_like(self.v))


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

    def run_spk(self):
        a_in_data = self.a_in.recv()
        if _reset_due(self):
            self.u *= 0
            self.v *= 0
        self.subthr_dynamics(activation_in=a_in_data)
        self.v_out.send(self.v)
        self.s_out.send(np.zeros_like(self.v))
