"""One command-line vocabulary (delaysnn.options): every option of every command states its
default, usage lines say `delaysnn SUBCOMMAND` when called through delaysnn, each idea has one
spelling and the old spellings still work for a release, with a warning."""
from __future__ import annotations

import argparse
import importlib

import pytest

from delaysnn.cli import SUBCOMMANDS, main, parser_for
from delaysnn.options import (
    DEPRECATED,
    HelpFormatter,
    add_deprecated,
    help_problems,
    subparsers_of,
)

# `python -m` commands outside the delaysnn console script, each with build_parser()
MODULES = ["export.qat", "export.to_onnx", "experiments.pareto", "experiments.showcase",
           "experiments.heldout_speaker", "experiments.nir_snntorch", "experiments.fidelity",
           "experiments.lava_dl_example", "experiments.lava_points", "experiments.voice_levers",
           "experiments.fidelity_agreement",
           "experiments.scale_scan"]


def _commands():
    out = []
    for name in SUBCOMMANDS:
        out.append(pytest.param(name, id=f"delaysnn {name}"))
    return out + [pytest.param(m, id=m) for m in MODULES]


def _parser(command: str) -> argparse.ArgumentParser:
    if command in SUBCOMMANDS:
        return parser_for(command)
    return importlib.import_module(command).build_parser()


def _all_parsers(parser):
    yield parser
    for sub in subparsers_of(parser).values():
        yield from _all_parsers(sub)


@pytest.mark.parametrize("command", _commands())
def test_every_option_states_its_default(command):
    assert help_problems(_parser(command)) == []


@pytest.mark.parametrize("command", _commands())
def test_description_is_a_whole_sentence(command):
    for p in _all_parsers(_parser(command)):
        assert p.description and p.description.rstrip().endswith("."), (p.prog,
                                                                        p.description)


@pytest.mark.parametrize("name", _commands()[:len(SUBCOMMANDS)])
def test_usage_names_the_delaysnn_subcommand(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: delaysnn {name} ")
    # the same module run with python -m keeps its own name
    module, inner, _ = SUBCOMMANDS[name]
    with pytest.raises(SystemExit):
        importlib.import_module(module).main(([inner] if inner else []) + ["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m ")


def test_no_command_shows_a_deprecated_spelling():
    """One spelling per idea: the old ones are hidden aliases, never in --help."""
    seen = {}
    for command in list(SUBCOMMANDS) + MODULES:
        for p in _all_parsers(_parser(command)):
            for a in p._actions:
                for opt in a.option_strings:
                    seen.setdefault(opt, []).append((p.prog, a.help is argparse.SUPPRESS))
    for old, new in DEPRECATED.items():
        assert all(hidden for _, hidden in seen.get(old, [])), (old, seen.get(old))
        assert new in seen, f"{new} (which replaces {old}) is not an option of any command"
    # the ideas the issue lists, each under its one name
    for opt in ("--dataset", "--limit", "--profile", "--plot", "--out", "--json"):
        assert opt in seen


# (command argv with the old spelling, the same with the new one, dest, parsed value)
ALIASES = [
    (["lava_runtime.__main__", "report", "R", "--lava-limit", "5"], "--limit", "lava_limit", 5),
    (["lava_runtime.__main__", "report", "R", "--profile-set", "loihi2,gpu"], "--profiles",
     "profile_set", "loihi2,gpu"),
    (["lava_runtime.__main__", "report", "R", "--export-profile", "loihi1"], "--profile",
     "export_profile", "loihi1"),
    (["lava_runtime.__main__", "demo", "--lava-limit", "3"], "--limit", "lava_limit", 3),
    (["export.from_nir", "g.nir", "--out", "n.h5", "--data", "fsdd"], "--dataset", "dataset",
     "fsdd"),
    (["experiments.pareto", "a.json", "--png", "p.png"], "--plot", "plot", "p.png"),
    (["experiments.nir_snntorch", "--out", "o", "--lava-samples", "4"], "--limit",
     "lava_samples", 4),
]


@pytest.mark.parametrize("argv, new, dest, value", ALIASES,
                         ids=[f"{a[0][0]} {a[1]}" for a in ALIASES])
def test_old_spelling_warns_once_and_means_the_new_one(argv, new, dest, value, capsys):
    module, args = argv[0], argv[1:]
    old = next(a for a in args if a in DEPRECATED)
    assert DEPRECATED[old] == new
    parsed = importlib.import_module(module).build_parser().parse_args(args)
    assert getattr(parsed, dest) == value
    err = capsys.readouterr().err
    assert err.count(f"warning: {old} is deprecated, use {new}") == 1
    fresh = importlib.import_module(module).build_parser().parse_args(
        [new if a == old else a for a in args])
    assert vars(fresh) == vars(parsed) and capsys.readouterr().err == ""


def test_formatter_adds_defaults_and_the_checker_finds_missing_ones():
    p = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    p.add_argument("--bits", type=int, default=8, help="payload bits")
    p.add_argument("--fast", action="store_true", help="go fast")
    p.add_argument("--no-bar", dest="bar", action="store_false", help="no bar")
    p.add_argument("--limit", type=int, default=None, help="first N samples")
    p.add_argument("--out", required=True, help="file to write")
    text = p.format_help()
    assert "payload bits (default: 8)" in text and "go fast (default: off)" in text
    assert "no bar (default: on)" in " ".join(text.split())
    assert help_problems(p) == ["x --limit: the help text states no default"]
    p.add_argument("--quiet", action="store_true")  # no help text at all
    assert "x --quiet: no help text" in help_problems(p)


def test_add_deprecated_only_for_listed_aliases_of_optional_options():
    p = argparse.ArgumentParser()
    limit = p.add_argument("--limit", type=int)
    with pytest.raises(ValueError, match="not listed"):
        add_deprecated(p, "--max", limit)
    plot = p.add_argument("--plot", required=True)
    with pytest.raises(ValueError, match="required=False"):
        add_deprecated(p, "--png", plot)
