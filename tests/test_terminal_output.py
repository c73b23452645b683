"""What the commands print (issue 23 item 11): a progress bar follows the label printed before
it, its clearing never runs into the next message in a log, and energies and times are in one
engineering format with units."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lava_runtime.budget.text import format_energy, format_si

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    from deployed.emulator import emulate
    from deployed.synthetic import random_network, random_payloads
    from lava_runtime.lava_graph.graph import run_network

    net = random_network((8, 12, 3), time_steps=10, max_delay=4, density=0.5, seed=2)
    p = random_payloads(net, 3, seed=1)
    print("LABEL emulate the test split")
    emulate(net, p, progress=True)
    print("LABEL Lava")
    run_network(net, p, progress=True, timeout_s=240)
    print("NEXT MESSAGE")
    """)


def test_bars_follow_their_labels_and_end_cleanly_in_a_log():
    """stdout and stderr into one pipe, as `cmd > log 2>&1` or `make demo | tee log`, with
    Python's default buffering (stdout block-buffered in a pipe); bytes as written."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=300)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    emulate_bar, lava_bar = out.index("emulate:"), out.index("lava (lava, ")
    assert out.index("LABEL emulate") < emulate_bar < out.index("LABEL Lava") < lava_bar
    # no clearing (carriage return, spaces, carriage return) left in the log: every bar ends
    # with a newline and each message starts a line of its own
    assert not re.search(r"\r +\r", out), repr(out)
    for label in ("LABEL Lava", "NEXT MESSAGE"):
        assert out[out.index(label) - 1] == "\n", repr(out)


DEPLOY = textwrap.dedent("""
    import sys
    from lava_runtime.pipeline import deploy
    deploy(sys.argv[1], "loihi2", lava_limit=0, progress=True, evaluation=None,
           allow_unfinished=True)
    """)


def test_each_emulator_bar_follows_a_label_that_says_what_it_emulates(tmp_path):
    """The demo's deploy stage: the export's own accuracy check emulates the validation split
    before the test split is emulated; each bar sits under the line that announces it."""
    from helpers.export_checkpoints import make_checkpoint, save_checkpoint

    from trainer.data import load_dataset

    d = make_checkpoint(sizes=(12, 24, 5), time_steps=30, seed=15, weight_scale=8.0)
    d["data_recipe"] = load_dataset("synthetic", "train", n_mels=12, time_steps=30, n_train=60,
                                    n_test=20, n_classes=5).recipe
    ck = save_checkpoint(d, tmp_path / "run")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    r = subprocess.run([sys.executable, "-c", DEPLOY, str(ck)], cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    order = [out.index("export to loihi2, checking its accuracy on the val split (float model "
                       "and emulator)"), out.index("accuracy check (fixed point, emulator):"),
             out.index("emulate the test split (20 samples)"), out.index("emulate test split:")]
    assert order == sorted(order), out


@pytest.mark.parametrize("value, unit, text", [
    (0.0115, "J", "11.5 mJ"), (1.41e-05, "J", "14.1 uJ"), (4.16e-06, "J", "4.16 uJ"),
    (1.9e-05, "s", "19 us"), (0.0, "J", "0 J"), (None, "J", "-"), (2.5, "J", "2.5 J")])
def test_engineering_format(value, unit, text):
    assert format_si(value, unit) == text
    if unit == "J":
        assert format_energy(value) == text


def test_budget_tables_print_energies_and_times_in_one_format(tmp_path, capsys):
    from deployed.netx_h5 import save
    from deployed.synthetic import random_network
    from lava_runtime.budget.cli import run_budget

    net = random_network((10, 12, 4), time_steps=30, max_delay=6, density=0.3, seed=3,
                         input_weight_exp=0, vth=600)
    save(net, tmp_path / "net.h5")
    run_budget(tmp_path / "net.h5", profile="all", dataset="synthetic", limit=3, progress=False)
    text = capsys.readouterr().out
    energies = re.findall(r"(?:energy[^:\n]*:|^  \w+ +)\s*(\S+ \S*J)\b", text, re.M)
    assert energies, text
    # no scientific notation next to a joule or a second anywhere in the output
    assert not re.search(r"\de[-+]\d+ ?[JsW]\b", text), text
    table = text[text.index("profile              kind"):]
    for line in table.splitlines()[2:9]:
        cells = re.split(r" {2,}", line.strip())
        for cell in cells[5:7]:  # dynamic and static energy per sample
            assert cell == "-" or cell.startswith("refused") or re.fullmatch(
                r"\d+(\.\d+)? [munpf]?J", cell), (line, cell)
        assert cells[7] == "-" or re.fullmatch(r"\d+(\.\d+)? [munpf]?s", cells[7]), line
