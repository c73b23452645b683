"""`python -m helpers.lava_fault.worker JOB_DIR`: the runtime's Lava worker, with one extra
process listening to the input that raises ("raise") or never returns ("hang") at a step.

Tests point lava_runtime.lava_graph.sandbox.WORKER_MODULE here and set FAULT=kind:step in the
environment, so a failing or hanging run goes through run_network, the sandbox and its clean-up
exactly as a real one would."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from lava.magma.core.decorator import implements, requires
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

FAULT_ENV = "DELAYSNN_TEST_FAULT"


class Faulty(AbstractProcess):
    """Receives (shape) and fails at `step`: kind "raise" or "hang"."""

    def __init__(self, *, shape, kind: str, step: int, **kwargs) -> None:
        super().__init__(shape=shape, kind=kind, step=step, **kwargs)
        self.a_in = InPort(shape=shape)


@implements(proc=Faulty, protocol=LoihiProtocol)
@requires(CPU)
class PyFaulty(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._kind, self._step = proc_params["kind"], int(proc_params["step"])

    def run_spk(self):
        self.a_in.recv()
        if self.time_step == self._step:
            if self._kind == "raise":
                raise RuntimeError(f"fault injected at step {self._step}")
            while True:  # never return, like a deadlocked Lava run
                time.sleep(1.0)


def build_with_fault(job: dict) -> dict:
    from lava_runtime.lava_graph.graph import build_graph

    graph = build_graph(job)
    kind, step = os.environ[FAULT_ENV].split(":")
    head = graph["head"]
    faulty = Faulty(shape=head.s_out.shape, kind=kind, step=int(step))
    head.s_out.connect(faulty.a_in)
    return {**graph, "n_processes": graph["n_processes"] + 1}


if __name__ == "__main__":
    from lava_runtime.lava_graph.worker import main

    sys.exit(main(sys.argv[1], build=build_with_fault))
