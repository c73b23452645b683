"""The `delaysnn` console script: every subcommand is the module's own command."""
from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from delaysnn.cli import SUBCOMMANDS, main

REPO = Path(__file__).resolve().parents[1]


def _help(fn, argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        fn(argv)
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_each_subcommand_prints_its_module_help(name, capsys):
    """`delaysnn NAME --help` is `python -m MODULE [inner] --help`: the same parser, whose
    usage line names the command as it was called (tests/test_cli_options.py)."""
    ours = _help(main, [name, "--help"], capsys)
    module, inner, _ = SUBCOMMANDS[name]
    theirs = _help(importlib.import_module(module).main,
                   ([inner] if inner else []) + ["--help"], capsys)
    assert ours.startswith("usage:")
    # after the usage lines: the same description and options
    assert ours.split("\n\n", 1)[1] == theirs.split("\n\n", 1)[1]


def test_console_script_is_declared_and_lists_the_subcommands(capsys):
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["delaysnn"] == "delaysnn.cli:main"
    assert set(SUBCOMMANDS) == {"train", "evaluate", "analyze", "export", "from-nir",
                                "from-netx", "to-nir", "run", "budget", "report", "demo", "sweep"}
    assert main([]) == 2 and "from-nir" in capsys.readouterr().out
    assert main(["nope"]) == 2 and "unknown subcommand 'nope'" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "delaysnn", "to-nir", "--help"], cwd=REPO,
                       capture_output=True, text=True, env={"PYTHONPATH": str(REPO),
                                                             "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "--dt-ms" in r.stdout
