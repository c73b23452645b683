"""Command line: python -m trainer train ... | python -m trainer evaluate RUN_DIR [--split test]."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer",
                                description="Train spiking networks with learned delays.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a network into RUN_DIR",
                       description="Defaults: trainer/defaults.toml; a flag left out keeps it.")
    t.add_argument("--dataset", help="fsdd, rawhd, shd, ssc, folder or synthetic")
    t.add_argument("--data-dir", dest="data_dir", help="the dataset's folder")
    t.add_argument("--method", help="dcls, structure, structure-multi or no-delay")
    t.add_argument("--sparsity", type=float, help="fraction of absent connections, 0 <= S < 1")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int, help="global batch size")
    t.add_argument("--kernel-size", dest="kernel_size", type=int,
                   help="K: delays 0..K-1 steps (K-1 <= 62)")
    t.add_argument("--dale", action="store_const", const=True, default=None,
                   help="one sign per presynaptic neuron")
    t.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--out", required=True, help="RUN_DIR")
    t.add_argument("--config", help="TOML file with config keys")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key (TOML value), repeatable")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    t.add_argument("--no-progress", dest="progress", action="store_false")
    e = sub.add_parser("evaluate", help="accuracies of RUN_DIR/checkpoint.pt")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--data-dir", dest="data_dir")
    e.add_argument("--device", default="cpu")
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
