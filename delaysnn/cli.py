"""`delaysnn SUBCOMMAND [ARGS]`: one console script over the project's commands.

Each subcommand hands its arguments to the module behind it, whose own parser reads them, so
`delaysnn export ...` and `python -m export.to_lava ...` take the same options and defaults
(`delaysnn SUBCOMMAND --help` prints that module's help, whose usage line then says
`delaysnn SUBCOMMAND`: delaysnn.options.prog_as). Subcommand -> module:
"""
from __future__ import annotations

import argparse
import importlib
import sys

from delaysnn.options import prog_as, subparsers_of

# name -> (module, subcommand inside the module's parser or None, one-line help)
SUBCOMMANDS = {
    "train": ("trainer.__main__", "train", "train a network into RUN_DIR"),
    "evaluate": ("trainer.__main__", "evaluate", "accuracies of RUN_DIR/checkpoint.pt"),
    "analyze": ("trainer.analyze", None, "what the delays learned: figures and JSON of a run"),
    "export": ("export.to_lava", None, "checkpoint -> quantized netx HDF5 for Lava / Loihi 2"),
    "from-nir": ("export.from_nir", None, "NIR graph (snnTorch, Norse, ...) -> netx HDF5"),
    "from-netx": ("export.from_netx", None, "lava-dl netx HDF5 -> this project's network"),
    "to-nir": ("export.to_nir", None, "checkpoint -> NIR graph, delays included"),
    "run": ("lava_runtime.__main__", "run", "evaluate an exported network on a backend"),
    "budget": ("lava_runtime.__main__", "budget", "hardware budget estimate"),
    "report": ("lava_runtime.__main__", "report", "one HTML page about a trained run"),
    "demo": ("lava_runtime.__main__", "demo", "train -> export -> Lava -> budget"),
    "sweep": ("experiments.sweep", None, "methods x sparsities x seeds, summary tables"),
}

__doc__ += "\n".join(f"    {name:<9} python -m {mod.removesuffix('.__main__')}"
                     + (f" {inner}" if inner else "") for name, (mod, inner, _) in
                     SUBCOMMANDS.items()) + "\n"


def usage() -> str:
    lines = ["usage: delaysnn SUBCOMMAND [ARGS]  (delaysnn SUBCOMMAND --help for its options)",
             "", "Spiking networks with learned delays, exported to Lava / Loihi 2.", "",
             "subcommands:"]
    lines += [f"  {name:<10}{h}" for name, (_, _, h) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _prog(name: str) -> str:
    """The name the module's top-level parser takes under delaysnn: "delaysnn" when the
    subcommand is one of the module's own subcommands (its parser adds the name), else
    "delaysnn NAME"."""
    return "delaysnn" if SUBCOMMANDS[name][1] else f"delaysnn {name}"


def parser_for(name: str) -> argparse.ArgumentParser:
    """The argparse parser that reads `delaysnn NAME ...` (the module's build_parser, and its
    subcommand's parser where the module has several)."""
    module, inner, _ = SUBCOMMANDS[name]
    with prog_as(_prog(name)):
        parser = importlib.import_module(module).build_parser()
    return subparsers_of(parser)[inner] if inner else parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"error: unknown subcommand {name!r}; choose one of {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        return 2
    module, inner, _ = SUBCOMMANDS[name]
    mod_main = importlib.import_module(module).main
    with prog_as(_prog(name)):
        return int(mod_main(([inner] if inner else []) + rest) or 0)
