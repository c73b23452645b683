"""The install step: the patched Lava and NeuroBench wheels of tools/patched_wheels.py are the ones
installed, pip sees no conflict, and Lava imports on Python 3.11 and runs."""
from __future__ import annotations

import importlib.util
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.shm_hygiene import leaked_shm, shm_entries

REPO = Path(__file__).resolve().parents[1]


def _tool():
    """tools/patched_wheels.py as a module (tools/ is not a package)."""
    if "patched_wheels" not in sys.modules:
        spec = importlib.util.spec_from_file_location("patched_wheels",
                                                      REPO / "tools" / "patched_wheels.py")
        sys.modules["patched_wheels"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["patched_wheels"])
    return sys.modules["patched_wheels"]


def test_patched_wheels_are_installed():
    """Versions 0.10.0+delaysnn1 etc., with every source fix (tools/patched_wheels.py --check)."""
    check = subprocess.run([sys.executable, "tools/patched_wheels.py", "--check"], cwd=REPO,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert ("lava-nc 0.10.0+delaysnn1, lava-dl 0.6.0+delaysnn1, neurobench 2.3.0+delaysnn1 "
            "installed") in check.stdout


# The one broken requirement `make test` leaves on purpose: norse is installed with --no-deps
# without its torchvision, whose PyPI wheel breaks lava-dl's SLAYER import next to the CPU torch
# (pyproject.toml, test extra; README, NIR section).
KNOWN_BROKEN = {"norse 1.1.0 requires torchvision, which is not installed."}


def test_pip_check_is_clean():
    r = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    broken = {line.strip() for line in r.stdout.splitlines() if line.strip()}
    assert "No broken requirements found." in broken or broken <= KNOWN_BROKEN, (
        r.stdout + r.stderr)


UPSTREAM_LAVA_DL = """Metadata-Version: 2.1
Name: lava-dl
Version: 0.6.0
Requires-Python: >=3.10,<3.11
Requires-Dist: h5py (>=3.7.0,<4.0.0)
Requires-Dist: lava-nc (==0.10.0)
Requires-Dist: ninja (>=1.10.2.3,<2.0.0.0)
Requires-Dist: pillow (>=10.0.1,<11.0)
Requires-Dist: pytest (>=7.2.0,<8.0.0)
Requires-Dist: torch (>=2.3.1,<2.4.0)
Requires-Dist: torchvision (>=0.18.0,<0.19.0)
Requires-Dist: Unittest2 (>=1.1.0,<2.0.0)

Requires-Dist: this line is description text and stays
"""


def test_metadata_rewrite_relaxes_pins_and_keeps_the_description():
    tool = _tool()
    (spec,) = [s for s in tool.SPECS if s.name == "lava-dl"]
    new = tool.rewrite_metadata(UPSTREAM_LAVA_DL, spec).split("\n")
    assert "Version: 0.6.0+delaysnn1" in new and "Requires-Python: >=3.10,<3.12" in new
    assert "Requires-Dist: torch>=2.3.1" in new
    assert "Requires-Dist: lava-nc==0.10.0+delaysnn1" in new
    assert 'Requires-Dist: torchvision<0.19.0,>=0.18.0; extra == "object-detection"' in new
    assert "Provides-Extra: object-detection" in new and "Provides-Extra: cuda" in new
    assert not [line for line in new if "pytest" in line or "nittest2" in line]
    assert new[-2:] == ["Requires-Dist: this line is description text and stays", ""]


def test_metadata_rewrite_refuses_another_release():
    tool = _tool()
    (spec,) = [s for s in tool.SPECS if s.name == "lava-dl"]
    with pytest.raises(ValueError, match="version 0.7.0, expected 0.6.0"):
        tool.rewrite_metadata(UPSTREAM_LAVA_DL.replace("Version: 0.6.0", "Version: 0.7.0"), spec)
    with pytest.raises(ValueError, match="no Requires-Dist for \\['ninja'\\]"):
        tool.rewrite_metadata(UPSTREAM_LAVA_DL.replace("Requires-Dist: ninja", "X: ninja"), spec)


def test_source_fixes_refuse_text_they_do_not_know():
    tool = _tool()
    for fix in (tool.fix_var_model, tool.fix_slayer_init, tool.fix_start_method):
        with pytest.raises(ValueError, match="not found"):
            fix("print('another release')\n")


def test_lava_and_netx_import():
    from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: F401
    from lava.proc.dense.process import DelayDense  # noqa: F401
    from lava.proc.lif.process import LIF  # noqa: F401
    import lava.lib.dl.netx as netx

    assert hasattr(netx, "hdf5") and hasattr(netx.hdf5, "Network")


def test_two_neuron_network_runs_and_stops():
    """LIF (biased to fire) -> Dense -> LIF: the second neuron fires, then everything stops."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    shm_before = shm_entries()
    # fixed_pt: bias 64 << 0 adds one weight unit per step; v > vth << 6 fires.
    pre = LIF(shape=(1,), du=4095, dv=0, vth=2, bias_mant=64 * 3, bias_exp=0)
    syn = Dense(weights=np.array([[254]]))
    post = LIF(shape=(1,), du=4095, dv=0, vth=1000)
    pre.s_out.connect(syn.s_in)
    syn.a_out.connect(post.a_in)
    mon = Monitor()
    mon.probe(post.v, 10)
    try:
        post.run(condition=RunSteps(num_steps=10), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        v = np.asarray(mon.get_data()[post.name]["v"]).ravel()
    finally:
        post.stop()
    # pre fires every step (v = 192 > 2 << 6); one step of Dense latency, then post integrates
    # 254 << 6 = 16256 per step and fires when v > 1000 << 6 = 64000 (then v = 0)
    assert v.tolist() == [0, 16256, 32512, 48768, 0, 16256, 32512, 48768, 0, 16256]
    assert not multiprocessing.active_children()
    assert leaked_shm(shm_before) == set()   # another job's segments do not count


def test_lava_imports_after_multiprocessing_context_is_set():
    """Lava's import used to call set_start_method('fork') unconditionally and fail."""
    code = ("import multiprocessing as mp; mp.set_start_method('fork'); "
            "import lava.magma.runtime.message_infrastructure.multiprocessing; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
