"""Compatibility: a network file written before recurrence existed (tests/data/old_network_v1.h5,
made with deployed.netx_h5 of commit 05e665f by tests/data/make_old_network.py) still loads as
a feed-forward network, re-saves to the same bytes (format version 1) and emulates exactly as
that code did (the sha256 of its emulator output was recorded then)."""
import hashlib
from pathlib import Path

import h5py

from deployed import netx_h5
from deployed.emulator import emulate
from deployed.synthetic import random_payloads

OLD = Path(__file__).parent / "data" / "old_network_v1.h5"
OLD_SHA256 = "59d39c383660903b6ae40a0970cbbd466c995f3b922607b5810f7a28d2d14ed9"
# the old code's emulate(net, random_payloads(net, 4, seed=2)): readout_v and spikes[0] bytes
READOUT_SHA256 = "a532a2bf91043163b32fbd82d1fe299f6c96c45a4357e92fc2e9f5e645a8543a"
SPIKES_SHA256 = "01c2700f7aeb93b9e552d87aeaed26cdac92175c609cf256b90522c90919c573"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_old_network_file_loads_resaves_and_emulates_as_before(tmp_path):
    assert _sha(OLD.read_bytes()) == OLD_SHA256
    with h5py.File(OLD) as f:
        assert f["delaysnn"].attrs["version"] == 1
    net = netx_h5.load(OLD)
    assert all(L.recurrent is None for L in net.layers)
    out = tmp_path / "again.h5"
    netx_h5.save(net, out)
    assert _sha(out.read_bytes()) == OLD_SHA256, (
        f"re-saved bytes differ (h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version})")
    act = emulate(net, random_payloads(net, 4, seed=2))
    assert _sha(act.readout_v.tobytes()) == READOUT_SHA256
    assert _sha(act.spikes[0].tobytes()) == SPIKES_SHA256
