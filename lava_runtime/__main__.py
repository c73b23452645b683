"""`python -m lava_runtime SUBCOMMAND ...`

Each subcommand lives in its own module with `add_parser(subparsers)` (which sets `func`);
add one by adding it to SUBCOMMANDS.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "run": "lava_runtime.run_cli",  # evaluate with a backend (lava, lava-float, loihi2, emulator)
    "budget": "lava_runtime.budget.cli",  # hardware budget estimate
    "demo": "lava_runtime.demo",  # the main job: train -> export -> Lava -> budget
    "report": "lava_runtime.report.build",  # one self-contained HTML page about a trained run
}


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    parser = new_parser("python -m lava_runtime", "Run exported networks on Lava / the "
                        "emulator and estimate hardware budgets.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError) as e:  # bad input, DataError, NetworkError, LavaRunError
        parser.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
