"""Command line: python -m trainer train ... | python -m trainer evaluate RUN_DIR [--split test]."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, new_parser

    from .config import DEFAULTS_PATH, load_defaults

    d = load_defaults()
    src = f"{DEFAULTS_PATH.parent.name}/{DEFAULTS_PATH.name}"

    def dflt(key: str) -> str:
        value = d[key]
        shown = "the data layer's default folder" if value == "" else (
            str(value).lower() if isinstance(value, bool) else value)
        return f"(default: {shown}, {src})"

    p = new_parser("python -m trainer", "Train spiking networks with learned delays.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train a network into RUN_DIR", formatter_class=HelpFormatter,
                       description=f"Train a network into RUN_DIR. Defaults: {src}; a flag left "
                                   "out keeps the config's value.")
    t.add_argument("--dataset",
                   help=f"fsdd, rawhd, shd, ssc, folder or synthetic {dflt('dataset')}")
    t.add_argument("--data-dir", dest="data_dir", help=f"the dataset's folder {dflt('data_dir')}")
    t.add_argument("--method",
                   help=f"dcls, structure, structure-multi or no-delay {dflt('method')}")
    t.add_argument("--sparsity", type=float,
                   help=f"fraction of absent connections, 0 <= S < 1 {dflt('sparsity')}")
    t.add_argument("--epochs", type=int, help=f"training epochs {dflt('epochs')}")
    t.add_argument("--seed", type=int,
                   help=f"seed of initialisation, data order and rewiring {dflt('seed')}")
    t.add_argument("--batch-size", dest="batch_size", type=int,
                   help=f"global batch size {dflt('batch_size')}")
    t.add_argument("--kernel-size", dest="kernel_size", type=int,
                   help=f"K: delays 0..K-1 steps (K-1 <= 62) {dflt('kernel_size')}")
    t.add_argument("--dale", action="store_const", const=True, default=None,
                   help=f"one sign per presynaptic neuron {dflt('dale')}")
    t.add_argument("--device", help=f"auto, cpu, cuda or cuda:N {dflt('device')}")
    t.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run folder to write (checkpoint.pt, metrics.json); required, no default")
    t.add_argument("--config", help="TOML file with config keys (default: none, only the "
                                    "defaults and the flags)")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key (TOML value), repeatable")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    t.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no per-batch progress bar; the line per epoch stays (default: bar on)")
    e = sub.add_parser("evaluate", help="accuracies of RUN_DIR/checkpoint.pt",
                       formatter_class=HelpFormatter,
                       description="Accuracies of RUN_DIR/checkpoint.pt on one split, with "
                                   "integer delays and with the training kernels.")
    e.add_argument("run_dir", help="run folder holding checkpoint.pt")
    e.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="split to evaluate")
    e.add_argument("--data-dir", dest="data_dir",
                   help="dataset folder (default: the one stored in the checkpoint's recipe)")
    e.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            from .train import train
            keys = ("dataset", "data_dir", "method", "sparsity", "epochs", "seed", "batch_size",
                    "kernel_size", "dale", "device")
            result = train(out=args.out, resume=args.resume, config_file=args.config,
                           sets=args.sets, progress=args.progress,
                           **{k: getattr(args, k) for k in keys})
            if result.metrics is not None:
                m = result.metrics
                print(f"{args.out}: val {m['val_accuracy']:.2%} test {m['test_accuracy']:.2%} "
                      f"(integer delays) {m['test_accuracy_train_kernels']:.2%} (training "
                      f"kernels), connections {m['connections']}")
        else:
            from .evaluate import evaluate
            r = evaluate(args.run_dir, args.split, args.data_dir, args.device)
            print(f"{args.run_dir} {r['split']} ({r['n_samples']} samples, epoch {r['epoch']}): "
                  f"accuracy {r['accuracy']:.2%} (integer delays), "
                  f"{r['accuracy_train_kernels']:.2%} (training kernels)")
    except ValueError as e:          # includes DataError and CheckpointError
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
