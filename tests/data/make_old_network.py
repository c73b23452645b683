"""How tests/data/old_network_v1.h5 was made (kept for the record; the test never runs it).

It was written by deployed.netx_h5 of commit 05e665f, before recurrence existed, and must not
be regenerated with later code (tests/test_old_network_file.py checks that old network files
still load, re-save byte-identically and emulate as that code did):

    git archive 05e665f deployed | tar -x -C OLD_TREE
    PYTHONPATH=OLD_TREE OMP_NUM_THREADS=1 python tests/data/make_old_network.py tests/data
"""
import hashlib
import sys
from pathlib import Path

from deployed import netx_h5
from deployed.emulator import emulate
from deployed.synthetic import random_network, random_payloads

if __name__ == "__main__":
    net = random_network((6, 10, 3), time_steps=8, max_delay=5, density=0.5, extra_delays=0.2,
                         message_bits=3, input_weight_exp=-2, vth=60, bias_max=30, seed=9)
    path = Path(sys.argv[1]) / "old_network_v1.h5"
    netx_h5.save(net, path)
    act = emulate(net, random_payloads(net, 4, seed=2))
    print("file sha256", hashlib.sha256(path.read_bytes()).hexdigest())
    print("readout_v sha256", hashlib.sha256(act.readout_v.tobytes()).hexdigest())
    print("spikes sha256", hashlib.sha256(act.spikes[0].tobytes()).hexdigest())
