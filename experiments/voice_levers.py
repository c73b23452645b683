"""Screen of the levers for voices never heard (issue 28): one short training per lever on one
leave-one-speaker-out fold, each kept only when it beats the baseline on validation.

    python -m experiments.voice_levers --config configs/fsdd-sparse.toml --epochs 20 \
        --out runs/voice_levers --json docs/results/voice_levers.json

Fold (as experiments/loso.py): test = every recording of ``--speaker``, validation = every
recording of the next speaker in sorted order, training = the other four. Levers (the config
keys each sets, on top of ``--config``; :data:`LEVERS`): front-end normalisation
(``frontend_norm`` utterance / pcen), the earlier augmentation (time shift, rate, band shift,
noise), VTLP, SpecAugment masks, espeak-ng voices added to training (fsdd ``tts_voices``),
espeak-ng voices alone (dataset tts-digits; its accuracy is then measured on the fold's real
speakers), and both with flite voices too (``tts_flite_voices``, tts-digits ``flite_voices``).
A lever is **kept** when its validation accuracy (mean over ``--seeds``) beats the baseline's
by more than ``--min-gain`` points; the kept levers that train on FSDD are then trained together
(``combined``), and the ``winner`` is the best of the kept levers and their combination on
validation. The test accuracy is recorded but chooses nothing. Each training lives in
OUT/LEVER-sSEED (the combination in OUT/combined-A+B-sSEED) and is reused (or resumed) when
present; the JSON is rewritten after each one. ``host_cost`` gives the measured host time of
each front-end normalisation per utterance (features of FSDD recordings, this machine) and its
operations; ``speaker_spread`` how far the speakers differ in speech duration and spectral
centroid, next to the ranges the earlier augmentation drew from (why it could not reach an
unheard voice).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from trainer.file_io import read_json_file, write_json_atomic

OLD_AUGMENT = {"augment_shift": 5, "augment_speed": 0.1, "augment_bands": 1,
               "augment_noise_db": 10.0}
#: lever name -> config keys it sets; "tts-only" trains on dataset tts-digits instead of FSDD
LEVERS: dict[str, dict] = {
    "baseline": {},
    "norm-utterance": {"frontend_norm": "utterance"},
    "norm-pcen": {"frontend_norm": "pcen"},
    "augment-earlier": OLD_AUGMENT,
    "vtlp": {"augment_vtlp": 0.1},
    "specaugment": {"augment_time_mask": 10, "augment_freq_mask": 5, "augment_masks": 2},
    "tts-voices": {"data_options": {"tts_voices": 40}},
    "tts-only": {"dataset": "tts-digits", "data_options": {"voices": 40, "test_voices": 6}},
    "tts-voices-flite": {"data_options": {"tts_voices": 40, "tts_flite_voices": 40}},
    "tts-only-flite": {"dataset": "tts-digits",
                       "data_options": {"voices": 40, "flite_voices": 40, "test_voices": 6}},
}
NORM_OPS = {
    "none": "per frame and band: log10, subtract, max, add, multiply (peak over the recording)",
    "utterance": "as none, then per band mean and standard deviation over the recording (two "
                 "passes, 1 sqrt per band), per frame and band subtract, divide, clip, scale",
    "pcen": "per frame and band: 1 multiply-add smoother, 1 power (alpha), 1 divide, 1 add, 1 "
            "square root, 1 subtract, 1 scale (causal apart from the peak reference)",
}


def host_cost(data_dir=None, n_files: int = 50) -> dict:
    """Per-utterance host time (ms, median of ``n_files`` FSDD recordings, after a warm-up) of
    the Mel features with each normalisation, and what each computes."""
    import dataclasses

    import numpy as np

    from trainer.data.audio_folder import list_audio
    from trainer.data.audio_io import read_audio
    from trainer.data.frontend import NORMS, features
    from trainer.data.fsdd import mel_recipe, resolve_data_dir

    files = list_audio(resolve_data_dir(data_dir), (".wav",))[:n_files]
    waves = [read_audio(f) for f in files]
    out = {}
    for norm in NORMS:
        r = dataclasses.replace(mel_recipe(40, 100), norm=norm)
        features(*waves[0], r)
        times = []
        for w, sr in waves:
            t0 = time.perf_counter()
            features(w, sr, r)
            times.append(time.perf_counter() - t0)
        out[norm] = {"ms_per_utterance": float(np.median(times)) * 1e3, "ops": NORM_OPS[norm]}
    return {"files": len(waves), "norms": out,
            "note": "median wall time of trainer.data.features (resampling, STFT, Mel and the "
                    "normalisation) on this machine's CPU, shared with other jobs"}


def speaker_spread(data_dir=None) -> dict:
    """How far FSDD's speakers differ in what the earlier augmentation varies: per speaker the
    median over its recordings of the speech duration (steps within 40 dB of the recording's
    peak, i.e. a frame whose loudest band is there) and of the spectral centroid of those frames
    (Mel band index, power-weighted), next to the earlier ranges (rate +-10 %, bands +-1)."""
    import numpy as np

    from trainer.augment import SCALE, TOP_DB
    from trainer.data.audio_features import audio_features
    from trainer.data.fsdd import list_files, mel_recipe, resolve_data_dir, speakers_in

    folder = resolve_data_dir(data_dir)
    files, meta = [], []
    for spk in speakers_in(folder):
        f, _, spk_meta = list_files(folder, "test", test_speaker=spk)
        files += f
        meta += spk_meta
    x = audio_features(files, mel_recipe(40, 100), stem="fsdd-all", cache_dir=None)
    per: dict[str, dict[str, list[float]]] = {}
    for xi, m in zip(x, meta):
        speech = xi.max(axis=1) >= (TOP_DB - 40) * SCALE
        if not speech.any():
            continue
        power = 10 ** ((xi[speech] / SCALE - TOP_DB) / 10)
        d = per.setdefault(m["speaker"], {"duration": [], "centroid": []})
        d["duration"].append(float(speech.sum()))
        d["centroid"].append(float((power * np.arange(x.shape[2])).sum() / power.sum()))
    speakers = {s: {"recordings": len(d["duration"]),
                    "duration_steps_median": float(np.median(d["duration"])),
                    "centroid_band_median": float(np.median(d["centroid"]))}
                for s, d in sorted(per.items())}
    dur = [v["duration_steps_median"] for v in speakers.values()]
    cen = [v["centroid_band_median"] for v in speakers.values()]
    return {"speakers": speakers,
            "duration_ratio_max_over_min": max(dur) / min(dur),
            "centroid_range_bands": max(cen) - min(cen),
            "earlier_augmentation": {"rate_ratio_max_over_min": 1.1 ** 2, "band_shift": 1,
                                     "shift_steps": 5, "noise_db": 10.0}}


def lever_config(base, lever: dict, speaker: str, val_speaker: str, seed: int,
                 epochs: int | None, data_dir: str | None) -> dict:
    """The trainer config of one lever and seed on the fold (dict, validated)."""
    from experiments.loso import fold_config
    from trainer.config import resolve_config

    over = {k: v for k, v in (("epochs", epochs), ("data_dir", data_dir)) if v is not None}
    if lever.get("dataset") == "tts-digits":
        cfg = resolve_config(base, {**over, **lever, "seed": seed, "data_dir": ""})
        return cfg
    cfg = fold_config(base, speaker, val_speaker, {**over, "seed": seed})
    extra = {k: v for k, v in lever.items() if k != "data_options"}
    cfg.update(extra)
    cfg["data_options"] = {**cfg["data_options"], **lever.get("data_options", {})}
    return resolve_config(None, cfg)


def _fsdd_accuracy(run_dir: Path, speaker: str, data_dir) -> float:
    """Float accuracy (integer delays) of a run on every FSDD recording of ``speaker``, through
    the network's own front end."""
    import torch

    from trainer.checkpoint import CHECKPOINT, load_checkpoint_dict
    from trainer.data import load_dataset
    from trainer.evaluate import accuracy, model_from_checkpoint

    ck = load_checkpoint_dict(run_dir / CHECKPOINT)
    rec = ck["data_recipe"]
    ds = load_dataset("fsdd", "test", data_dir, n_mels=rec["n_mels"],
                      time_steps=rec["time_steps"], frontend=rec["frontend"],
                      test_speaker=speaker)
    with torch.no_grad():
        return accuracy(model_from_checkpoint(ck), ds.x, ds.y, hard=True)


def run_lever(name: str, cfg: dict, run_dir: Path, speaker: str, val_speaker: str,
              data_dir, progress: bool) -> dict:
    """Train (or reuse) one lever run; its validation and test accuracies (fractions)."""
    import trainer

    if (run_dir / "metrics.json").is_file():
        m = read_json_file(run_dir / "metrics.json")
    else:
        m = trainer.train(cfg, out=run_dir, resume=(run_dir / "last.pt").is_file(),
                          progress=progress).metrics
    if cfg["dataset"] == "tts-digits":      # validation and test on the fold's real speakers
        val = _fsdd_accuracy(run_dir, val_speaker, data_dir)
        test = _fsdd_accuracy(run_dir, speaker, data_dir)
        extra = {"tts_val_accuracy": m["val_accuracy"], "tts_test_accuracy": m["test_accuracy"]}
    else:
        val, test, extra = m["val_accuracy"], m["test_accuracy"], {}
    return {"seed": cfg["seed"], "val_accuracy": val, "test_accuracy": test,
            "best_epoch": m.get("best_epoch"), "train_seconds": m["seconds"], **extra}


def merge_levers(sets: list[dict]) -> dict:
    """One config overlay from several levers' (their data_options merged; ValueError when two
    levers set the same key differently, or when one changes the dataset)."""
    out: dict = {}
    for lever in sets:
        if "dataset" in lever:
            raise ValueError("a lever that replaces the dataset cannot be combined")
        for k, v in lever.items():
            if k == "data_options":
                out["data_options"] = {**out.get("data_options", {}), **v}
            elif k in out and out[k] != v:
                raise ValueError(f"levers set {k} to {out[k]!r} and {v!r}")
            else:
                out[k] = v
    return out


def winner(result: dict) -> dict:
    """The screen's choice: the kept lever or the combination of the kept levers with the best
    mean validation accuracy; the baseline when nothing was kept."""
    cands = [lv for lv in result["levers"] if lv["kept"]]
    if result.get("combined"):
        cands.append(result["combined"])
    if not cands:
        return {"name": "baseline", "sets": {}, "val_accuracy":
                result["levers"][0]["val_accuracy"]}
    best = max(cands, key=lambda c: c["val_accuracy"])
    return {"name": best["name"], "sets": best["sets"], "val_accuracy": best["val_accuracy"]}


def screen(config: str | None, out, json_path=None, *, speaker: str = "george",
           levers: list[str] | None = None, seeds: tuple[int, ...] = (0,),
           epochs: int | None = None, min_gain: float = 1.0, data_dir: str | None = None,
           progress: bool = True, command: str = "", combine: bool = True) -> dict:
    """Run (or reuse) every lever x seed on the fold, then (``combine``, when more than one
    lever is kept) the kept levers together; return (and write) the screen with its
    ``winner``: the best on validation among the kept levers and their combination."""
    from experiments.loso import fsdd_speakers

    if config and not Path(config).is_file():
        raise ValueError(f"config file {config} does not exist")
    names = list(levers or LEVERS)
    unknown = [n for n in names if n not in LEVERS]
    if unknown:
        raise ValueError(f"unknown lever(s) {unknown}; levers: {', '.join(LEVERS)}")
    if "baseline" not in names:
        names.insert(0, "baseline")
    if not seeds:
        raise ValueError("give at least one seed")
    everyone = fsdd_speakers(data_dir)
    if speaker not in everyone:
        raise ValueError(f"unknown FSDD speaker {speaker!r}; the speakers: {', '.join(everyone)}")
    val_speaker = everyone[(everyone.index(speaker) + 1) % len(everyone)]
    cfgs = {(n, s): lever_config(config or None, LEVERS[n], speaker, val_speaker, s, epochs,
                                 data_dir) for n in names for s in seeds}   # all checked first
    out = Path(out)
    result: dict = {"test_speaker": speaker, "val_speaker": val_speaker,
                    "config": config or "trainer/defaults.toml", "epochs": epochs,
                    "seeds": list(seeds), "min_gain_points": min_gain,
                    "rule": "kept when the mean validation accuracy beats the baseline's by more "
                            "than min_gain_points; test accuracy chooses nothing",
                    "levers": [], "kept": [], "command": command}
    for i, n in enumerate(names):
        runs = []
        for s in seeds:
            print(f"voice_levers: {i + 1}/{len(names)} {n} seed {s}", flush=True)
            runs.append(run_lever(n, cfgs[(n, s)], out / f"{n}-s{s}", speaker, val_speaker,
                                  data_dir, progress))
        val = sum(r["val_accuracy"] for r in runs) / len(runs)
        test = sum(r["test_accuracy"] for r in runs) / len(runs)
        result["levers"].append({"name": n, "sets": LEVERS[n], "runs": runs,
                                 "val_accuracy": val, "test_accuracy": test})
        base = result["levers"][0]["val_accuracy"]
        for lv in result["levers"]:
            lv["gain_points"] = 100 * (lv["val_accuracy"] - base)
            lv["kept"] = lv["name"] != "baseline" and lv["gain_points"] > min_gain
        result["kept"] = [lv["name"] for lv in result["levers"] if lv["kept"]]
        print(f"voice_levers: {n}: val {val:.2%} ({result['levers'][-1]['gain_points']:+.1f} "
              f"points), test {test:.2%}", flush=True)
        if json_path is not None:
            write_json_atomic(result, Path(json_path))
    together = [n for n in result["kept"] if "dataset" not in LEVERS[n]]  # tts-only: apart
    if combine and len(together) > 1:
        sets = merge_levers([LEVERS[n] for n in together])
        name = "+".join(together)
        runs = []
        for s in seeds:
            print(f"voice_levers: combined {name} seed {s}", flush=True)
            cfg = lever_config(config or None, sets, speaker, val_speaker, s, epochs, data_dir)
            runs.append(run_lever(name, cfg, out / f"combined-{name}-s{s}", speaker, val_speaker,
                                  data_dir, progress))
        val = sum(r["val_accuracy"] for r in runs) / len(runs)
        result["combined"] = {"name": name, "sets": sets, "runs": runs, "val_accuracy": val,
                              "test_accuracy": sum(r["test_accuracy"] for r in runs) / len(runs),
                              "gain_points": 100 * (val - result["levers"][0]["val_accuracy"])}
        print(f"voice_levers: combined {name}: val {val:.2%} "
              f"({result['combined']['gain_points']:+.1f} points), test "
              f"{result['combined']['test_accuracy']:.2%}", flush=True)
    result["winner"] = winner(result)
    result["host_cost"] = host_cost(data_dir)
    result["speaker_spread"] = speaker_spread(data_dir)
    if json_path is not None:
        write_json_atomic(result, Path(json_path))
    return result


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.voice_levers", __doc__)
    ap.add_argument("--config", default="", metavar="FILE.toml",
                    help="trainer config the levers add to (default: trainer/defaults.toml)")
    ap.add_argument("--out", default="runs/voice_levers", metavar="DIR",
                    help="folder of the runs")
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="screen file, rewritten after each lever (default: none written)")
    ap.add_argument("--speaker", default="george", help="the fold's test speaker")
    ap.add_argument("--levers", default=None, metavar="A,B",
                    help=f"levers to screen (default: all: {','.join(LEVERS)})")
    ap.add_argument("--seeds", default="0", metavar="0,1",
                    help="training seeds per lever (comma-separated)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="override the config's epochs (default: the config's own)")
    ap.add_argument("--min-gain", type=float, default=1.0, metavar="POINTS",
                    help="validation gain over the baseline, in points, a lever must exceed")
    ap.add_argument("--data-dir", default=None, metavar="DIR",
                    help="FSDD recordings folder (default: fsdd's lookup)")
    ap.add_argument("--no-combine", dest="combine", action="store_false",
                    help="do not train the kept levers together (default: train them together "
                         "when more than one is kept)")
    ap.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bars (default: shown)")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got {a.seeds!r}",
              file=sys.stderr)
        return 2
    levers = [s for s in a.levers.split(",") if s] if a.levers else None
    command = "python -m experiments.voice_levers " + " ".join(
        argv if argv is not None else sys.argv[1:])
    try:
        r = screen(a.config or None, a.out, a.json, speaker=a.speaker, levers=levers, seeds=seeds,
                   epochs=a.epochs, min_gain=a.min_gain, data_dir=a.data_dir,
                   progress=a.progress, command=command, combine=a.combine)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"voice_levers: kept {', '.join(r['kept']) or 'none'}; winner {r['winner']['name']} "
          f"(validation speaker {r['val_speaker']}, test speaker {r['test_speaker']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
