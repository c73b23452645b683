"""The command-line vocabulary every command shares, and the argparse helpers that keep it.

One spelling per idea (README, "Options shared by every command"; docs/design.md section 0):
`--dataset` (a trainer.data name), `--data-dir`, `--split`, `--limit` (use the first N samples),
`--profile` (one hardware profile; `report --profiles` is the set it budgets on), `--json`
(a report file), `--plot` (a PNG file), `--out` (the command's main output: a folder or a
file, its metavar and help say which) and `--no-progress`. Old spellings stay one release as
hidden aliases that print a warning (`add_deprecated`, table `DEPRECATED`).

Helpers: `HelpFormatter` states every option's default in its help text; `new_parser` builds a
command's parser with it; `command_prog` lets `delaysnn SUBCOMMAND` name itself in usage lines
(`prog_as`, set by delaysnn.cli); `help_problems` lists options whose help states no default
(tests/test_cli_options.py walks every command with it). Standard library only: the lowest rank
of docs/design.md, so every command module may import it.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# deprecated spelling -> the spelling that replaces it (kept for one release, with a warning)
DEPRECATED = {
    "--data": "--dataset",  # export.from_nir
    "--lava-limit": "--limit",  # report, demo
    "--lava-samples": "--limit",  # experiments.nir_snntorch
    "--profile-set": "--profiles",  # report
    "--export-profile": "--profile",  # report
    "--png": "--plot",  # experiments.pareto
}

_prog_override: str | None = None


def command_prog(default: str) -> str:
    """The name a command's usage line shows: `default` ("python -m export.to_lava"), or the
    name set by `prog_as` ("delaysnn export") while delaysnn.cli runs the command."""
    return _prog_override or default


@contextmanager
def prog_as(name: str) -> Iterator[None]:
    """Parsers built inside this block (through `command_prog`) call themselves `name`."""
    global _prog_override
    before, _prog_override = _prog_override, name
    try:
        yield
    finally:
        _prog_override = before


def description(doc: str | None) -> str:
    """A module docstring's first paragraph on one line: a whole sentence for --help."""
    return " ".join((doc or "").split("\n\n")[0].split())


def states_default(text: str) -> bool:
    """The rule for help texts: a default is stated as "default: X" or "(default X)"."""
    t = text.lower()
    return "default:" in t or "(default " in t or "%(default)" in t


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, plus the default at the end of every option's help that does not
    state one itself: "(default: 8)", "(default: off)" for a flag. An option whose default is
    None must say in words what it means ("default: all samples"): `help_problems` finds
    those that do not."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or states_default(text)
                or action.default is argparse.SUPPRESS or not text.strip()):
            return text
        if action.nargs == 0 and isinstance(action.default, bool):  # store_true / store_false
            return f"{text} (default: {'on' if action.default else 'off'})"
        if action.default is None:
            return text
        if action.default == []:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


def new_parser(prog: str, doc: str | None, **kwargs) -> argparse.ArgumentParser:
    """A command's top-level parser: `prog` through command_prog, the description from the
    first paragraph of `doc`, HelpFormatter."""
    return argparse.ArgumentParser(prog=command_prog(prog), description=description(doc),
                                   formatter_class=HelpFormatter, **kwargs)


class _DeprecatedAlias(argparse.Action):
    """An old spelling: stores into the new option's dest and warns on stderr (once per
    parser)."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new
        self.warned = False

    def __call__(self, parser, namespace, values, option_string=None):
        if not self.warned:
            print(f"warning: {option_string} is deprecated, use {self.new} (the old spelling "
                  "is removed in the next release)", file=sys.stderr)
            self.warned = True
        setattr(namespace, self.dest, values)


def add_deprecated(parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str,
                   new: argparse.Action) -> argparse.Action:
    """Add `old` (a key of DEPRECATED) as a hidden alias of the option `new` (the Action that
    parser.add_argument returned): same dest, type and choices; a warning when used."""
    if old not in DEPRECATED or DEPRECATED[old] not in new.option_strings:
        raise ValueError(f"{old} is not listed in delaysnn.options.DEPRECATED as an alias of "
                         f"{'/'.join(new.option_strings)}")
    if new.required:  # argparse would ask for the new spelling even when the old one is given
        raise ValueError(f"{'/'.join(new.option_strings)} has a deprecated alias: declare it "
                         "with required=False and check its presence after parsing")
    kwargs: dict[str, Any] = {} if new.type is None else {"type": new.type}
    return parser.add_argument(old, action=_DeprecatedAlias, new=DEPRECATED[old],
                               dest=new.dest, choices=new.choices, metavar=new.metavar,
                               default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """name -> parser of each subcommand of `parser` ({} when it has none)."""
    out: dict[str, argparse.ArgumentParser] = {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            out.update(a.choices)
    return out


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Options of `parser` and its subcommands whose --help text is missing or states no
    default (the rule: every optional option's formatted help passes `states_default`;
    required options and positional arguments need a help text). [] = every option is
    documented."""
    out = []
    fmt = parser._get_formatter()
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if a.help is argparse.SUPPRESS:
            continue
        name = "/".join(a.option_strings) or a.dest
        if not (a.help or "").strip():
            out.append(f"{parser.prog} {name}: no help text")
        elif a.option_strings and not a.required:
            text = fmt._get_help_string(a) if isinstance(fmt, HelpFormatter) else a.help
            # an option checked as required after parsing (one with a deprecated alias) says so
            if not states_default(text or "") and "required" not in (text or "").lower():
                out.append(f"{parser.prog} {name}: the help text states no default")
    for sub in subparsers_of(parser).values():
        out += help_problems(sub)
    return out
