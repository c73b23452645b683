"""New voices: train on five FSDD speakers, test on the sixth (never heard in training), with and
without training augmentation; one JSON row per (network, augmentation). With --all:
leave-one-speaker-out over every speaker, nested validation, emulator and Lava
(experiments/loso.py).

    python -m experiments.heldout_speaker --speaker george --out runs/heldout \
        --json docs/results/heldout_speaker.json [--network dense=] \
        [--network showcase=configs/fsdd-sparse.toml]
    python -m experiments.heldout_speaker --all --network dense= \
        --network showcase=configs/fsdd-sparse.toml --out runs/loso \
        --results docs/results/loso --json docs/results/loso.json

``--network NAME=CONFIG``: a trainer config file (empty: trainer/defaults.toml). Each run lives in
OUT/NAME-aug{on,off} and resumes when interrupted (``trainer.train(resume=True)``); the JSON is
rewritten after every finished run, so partial results persist, and keeps the rows of networks
not named in this invocation (same speaker). Accuracies are fractions of the
held-out speaker's 500 recordings (the test split of fsdd with ``test_speaker``); validation
(for the checkpoint choice) is carved from the five training speakers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.file_io import read_json_file, write_json_atomic

#: the augmentation used for "on" (trainer/augment.py; steps, fraction, bands, dB)
AUGMENT = {"augment_shift": 5, "augment_speed": 0.1, "augment_bands": 1, "augment_noise_db": 10.0}


def run_one(name: str, config: str | None, speaker: str, augment: bool, out: Path,
            epochs: int | None, progress: bool, data_dir: str | None = None) -> dict:
    """Train (or resume) one network on the five other speakers; its held-out accuracy."""
    import trainer

    sets: dict = {"dataset": "fsdd", "data_options": {"test_speaker": speaker}, "num_threads": 1}
    if augment:
        sets.update(AUGMENT)
    if epochs is not None:
        sets["epochs"] = epochs
    if data_dir is not None:
        sets["data_dir"] = data_dir
    run_dir = out / f"{name}-aug{'on' if augment else 'off'}"
    if (run_dir / "metrics.json").is_file():          # finished earlier
        m = json.loads((run_dir / "metrics.json").read_text())
    else:
        m = trainer.train(config or None, out=run_dir, resume=(run_dir / "last.pt").is_file(),
                          progress=progress, **sets).metrics
    return {"network": name, "config": config or "trainer/defaults.toml", "augmentation": augment,
            "augment_settings": AUGMENT if augment else None, "test_speaker": speaker,
            "epochs": m["epochs"],
            "method": m.get("method"), "connections": m.get("connections"),
            "val_accuracy": m["val_accuracy"], "heldout_accuracy": m["test_accuracy"],
            "seconds": m["seconds"],
            "command": f"python -m experiments.heldout_speaker --speaker {speaker} "
                       f"--network {name}={config or ''}"}


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.heldout_speaker", __doc__)
    ap.add_argument("--speaker", default="george", help="the FSDD speaker held out (test)")
    ap.add_argument("--all", action="store_true",
                    help="leave-one-speaker-out over every FSDD speaker (experiments/loso.py): "
                         "nested validation, float, emulator, Lava for one fold, budget; "
                         "no augmentation runs")
    ap.add_argument("--results", default="docs/results/loso", metavar="DIR",
                    help="--all: folder of the per-fold JSONs (a fold with one is skipped)")
    ap.add_argument("--speakers", default=None, metavar="A,B",
                    help="--all: test only these speakers (default: every FSDD speaker)")
    ap.add_argument("--lava-speaker", default="george", metavar="SPEAKER",
                    help="--all: the fold also run in Lava; 'none' for none")
    ap.add_argument("--data-dir", default=None, metavar="DIR",
                    help="FSDD recordings folder (default: fsdd's lookup: the CI copy, the "
                         "cache, a download)")
    ap.add_argument("--network", action="append", default=[], metavar="NAME=CONFIG",
                    help="network to train (repeatable; default: dense= , the trainer "
                         "defaults)")
    ap.add_argument("--out", default="runs/heldout", metavar="DIR", help="folder of the runs")
    ap.add_argument("--json", required=True, metavar="FILE.json",
                    help="results file (rewritten after each run); required, no default")
    ap.add_argument("--epochs", type=int, default=None,
                    help="override the configs' epochs (default: the configs' own)")
    ap.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bars (default: shown)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    nets = []
    for spec in args.network or ["dense="]:
        name, sep, cfg = spec.partition("=")
        if not sep or not name:
            print(f"error: --network must be NAME=CONFIG (CONFIG may be empty), got {spec!r}",
                  file=sys.stderr)
            return 2
        if cfg and not Path(cfg).is_file():
            print(f"error: config file {cfg} does not exist", file=sys.stderr)
            return 2
        nets.append((name, cfg or None))
    if args.all:
        return _loso(args, nets, argv)
    json_path = Path(args.json)
    names = {n for n, _ in nets}
    kept = []
    if json_path.is_file():
        old = read_json_file(json_path)
        if old.get("speaker") == args.speaker:
            kept = [r for r in old.get("runs", []) if r.get("network") not in names]
    rows = []
    for name, cfg in nets:
        for aug in (False, True):
            rows.append(run_one(name, cfg, args.speaker, aug, Path(args.out), args.epochs,
                                args.progress, args.data_dir))
            write_json_atomic({"speaker": args.speaker, "runs": kept + rows}, json_path)
            r = rows[-1]
            print(f"{name} augmentation {'on ' if aug else 'off'}: held-out speaker "
                  f"{args.speaker} {r['heldout_accuracy']:.2%} (val {r['val_accuracy']:.2%})")
    return 0


def _loso(args, nets, argv) -> int:
    from experiments.loso import leave_one_speaker_out

    speakers = [s for s in args.speakers.split(",") if s] if args.speakers else None
    lava = None if args.lava_speaker.lower() == "none" else args.lava_speaker
    command = "python -m experiments.heldout_speaker " + " ".join(
        argv if argv is not None else sys.argv[1:])
    try:
        leave_one_speaker_out(nets, args.out, args.results, args.json, speakers=speakers,
                              lava_speaker=lava, epochs=args.epochs, data_dir=args.data_dir,
                              progress=args.progress, command=command)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
