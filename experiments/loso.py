"""Leave-one-speaker-out over every FSDD speaker, for each network: train on four speakers, choose
the checkpoint on a fifth (nested validation), test on the sixth through the float model and the
bit-exact emulator, Lava for one fold, and the loihi2 budget.

    python -m experiments.heldout_speaker --all --network dense= \
        --network showcase=configs/fsdd-sparse.toml --out runs/loso \
        --results docs/results/loso --json docs/results/loso.json

Fold of speaker ``S`` (speakers sorted by name): test = all of S's recordings (fsdd option
``test_speaker``); validation = all of the next speaker's (``val_speaker``, cyclic), so the test
speaker chooses nothing, not even the epoch; training = the other four (plus whatever the
network's config adds, e.g. ``tts_voices``). Each fold trains into OUT/NAME/S (resumed when
interrupted), then ``lava_runtime.pipeline.deploy`` exports it to loihi2, emulates S's recordings,
runs them in Lava when S is the ``lava_speaker`` and budgets the activity. One JSON per fold
goes to RESULTS/NAME-S.json and a fold with one is skipped (its stored config must match). The
summary JSON is rewritten after every fold: per network ``folds`` (speaker, emulator_accuracy,
float_accuracy, ...), ``mean_emulator_accuracy`` and ``mean_float_accuracy`` (fractions, over
the folds done; ``missing`` lists the others) and whether every fold is within the showcase
budget (at most 1,280 synapses, under 2.0 uJ dynamic energy per sample on loihi2).
"""
from __future__ import annotations

import time
from pathlib import Path

from trainer.file_io import read_json_file, write_json_atomic

SHOWCASE_SYNAPSES, SHOWCASE_ENERGY_J = 1280, 2.0e-6   # the showcase budget (README)
PROFILE = "loihi2"


def fsdd_speakers(data_dir=None) -> list[str]:
    """The speakers of the FSDD folder (fsdd's lookup when data_dir is None), sorted."""
    from trainer.data.fsdd import resolve_data_dir, speakers_in

    folder = resolve_data_dir(data_dir)
    found = speakers_in(folder)
    if len(found) < 3:
        raise ValueError(f"FSDD folder {folder} has {len(found)} speaker(s) ({', '.join(found)}); "
                         f"leave-one-speaker-out with nested validation needs at least 3")
    return found


def fold_config(config: str | Path | dict | None, speaker: str, val_speaker: str,
                overrides: dict | None = None) -> dict:
    """The trainer config of one fold: CONFIG (file, dict or None = defaults) with
    ``overrides``, dataset fsdd, one thread unless the config names a count, and the fold's
    speakers merged into its data_options."""
    from trainer.config import resolve_config

    extra = dict(overrides or {})
    if isinstance(config, dict):
        extra = {**config, **extra}
        config = None
    cfg = resolve_config(config, extra)
    if cfg["dataset"] not in ("fsdd", "synthetic"):       # synthetic: the defaults' own
        raise ValueError(f"leave-one-speaker-out runs on fsdd; the config says dataset "
                         f"{cfg['dataset']!r}")
    cfg["dataset"] = "fsdd"
    cfg["num_threads"] = cfg["num_threads"] or 1     # a seed fixes the run (torch's default: not)
    cfg["data_options"] = {**cfg["data_options"], "test_speaker": speaker,
                           "val_speaker": val_speaker}
    return resolve_config(None, cfg)


def run_fold(name: str, cfg: dict, out: Path, lava: bool, progress: bool) -> dict:
    """Train (or resume) one fold into OUT/NAME/SPEAKER, deploy it; the fold's record."""
    import trainer
    from lava_runtime.pipeline import deploy
    from trainer.config import identity

    speaker = cfg["data_options"]["test_speaker"]
    run_dir = out / name / speaker
    t0 = time.perf_counter()
    if (run_dir / "metrics.json").is_file():
        metrics = read_json_file(run_dir / "metrics.json")
    else:
        metrics = trainer.train(cfg, out=run_dir, resume=(run_dir / "last.pt").is_file(),
                                progress=progress).metrics
    # deploy's fidelity bound, with the best network found written where it cannot be met
    # (the fold records whether it was): a fold is never dropped for it
    d = deploy(run_dir, PROFILE, split="test", lava_limit=None if lava else 0,
               net_path=run_dir / "net.h5", evaluation=False, progress=progress,
               allow_loss=True)
    rep = d.export_report
    budget = d.budgets[0]
    synapses = sum(L.n_synapses for L in d.net.layers)
    energy = budget.energy_total
    return {
        "network": name, "speaker": speaker, "val_speaker": cfg["data_options"]["val_speaker"],
        "emulator_accuracy": d.emulator["accuracy"],
        "float_accuracy": metrics["test_accuracy"],
        "float_accuracy_train_kernels": metrics.get("test_accuracy_train_kernels"),
        "val_accuracy": metrics["val_accuracy"], "best_epoch": metrics.get("best_epoch"),
        "lava_accuracy": None if d.lava is None else d.lava["accuracy"],
        "lava_equals_emulator_fraction": None if d.lava is None
        else d.lava["exact_match_fraction"],
        "n_test": int(len(d.y)), "synapses": synapses,
        "hidden_neurons": sum(L.n_out for L in d.net.layers[:-1]),
        "energy_per_sample_joules": energy, "synops_per_sample": budget.synops_per_sample,
        "within_showcase_budget": bool(synapses <= SHOWCASE_SYNAPSES and energy is not None
                                       and energy < SHOWCASE_ENERGY_J),
        "frontend": d.net.meta["data_recipe"].get("frontend"),
        "max_loss_bound": rep["max_loss_bound"],
        "fixed_point_loss_val": rep["fixed_point_loss_val"],
        "within_max_loss_bound": rep["fidelity"]["within_bound"],
        "epochs": metrics["epochs"], "train_seconds": metrics["seconds"],
        "seconds": time.perf_counter() - t0, "config": identity(cfg),
    }


def summary(networks: list[tuple[str, str]], speakers: list[str], records: dict,
            lava_speaker: str | None, command: str) -> dict:
    """The loso.json dict from the fold records done so far ({(name, speaker): record})."""
    out: dict = {"speakers": speakers, "profile": PROFILE,
                 "validation": "nested: the next speaker in sorted order (cyclic) is the whole "
                               "validation set; the test speaker chooses nothing",
                 "lava_speaker": lava_speaker, "command": command, "networks": {}}
    for name, label in networks:
        folds = [records[(name, s)] for s in speakers if (name, s) in records]
        n = len(folds)
        out["networks"][name] = {
            "config": label, "folds": folds,
            "mean_emulator_accuracy": sum(f["emulator_accuracy"] for f in folds) / n if n
            else None,
            "mean_float_accuracy": sum(f["float_accuracy"] for f in folds) / n if n else None,
            "complete": n == len(speakers),
            "missing": [s for s in speakers if (name, s) not in records],
            "within_showcase_budget": bool(n) and all(f["within_showcase_budget"]
                                                      for f in folds),
            "max_synapses": max((f["synapses"] for f in folds), default=None),
            "max_energy_per_sample_joules": max((f["energy_per_sample_joules"] or 0.0
                                                 for f in folds), default=None),
        }
    return out


def leave_one_speaker_out(networks: list[tuple[str, str | Path | dict | None]], out, results,
                          json_path=None, *, speakers: list[str] | None = None,
                          lava_speaker: str | None = "george", epochs: int | None = None,
                          data_dir: str | None = None, progress: bool = True,
                          command: str = "") -> dict:
    """Run (or resume) every fold of every network; return (and write to ``json_path``) the
    summary. networks: [(name, config file | dict | None = trainer defaults)]; speakers: the
    test speakers (None: every FSDD speaker; validation always cycles through all of them);
    lava_speaker: the fold run in Lava too (None: none); epochs, data_dir: config overrides."""
    from trainer.config import identity

    out, results = Path(out), Path(results)
    everyone = fsdd_speakers(data_dir)
    speakers = list(speakers or everyone)
    unknown = sorted(set(speakers) - set(everyone))
    if unknown:
        raise ValueError(f"unknown FSDD speaker(s) {unknown}; the speakers: {', '.join(everyone)}")
    if lava_speaker is not None and lava_speaker not in everyone:
        raise ValueError(f"lava_speaker {lava_speaker!r} is not an FSDD speaker "
                         f"({', '.join(everyone)})")
    names = [n for n, _ in networks]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"network names must be given and distinct, got {names}")
    overrides = {k: v for k, v in (("epochs", epochs), ("data_dir", data_dir)) if v is not None}
    plan, records, problems = [], {}, []
    for name, config in networks:
        for s in speakers:
            val = everyone[(everyone.index(s) + 1) % len(everyone)]
            cfg = fold_config(config, s, val, overrides)
            path = results / f"{name}-{s}.json"
            if path.is_file():
                rec = read_json_file(path)
                if rec.get("config") != identity(cfg):
                    problems.append(path.name)
                records[(name, s)] = rec
            else:
                plan.append((name, cfg, path))
    if problems:
        raise ValueError(f"fold file(s) {', '.join(problems)} in {results} hold another config; "
                         f"delete them or use another --results folder")
    labels = [(n, "trainer/defaults.toml" if not c else "dict" if isinstance(c, dict)
               else Path(c).as_posix()) for n, c in networks]
    results.mkdir(parents=True, exist_ok=True)

    def write() -> dict:
        s = summary(labels, speakers, records, lava_speaker, command)
        if json_path is not None:
            write_json_atomic(s, Path(json_path))
        return s

    done = len(records)
    total = len(records) + len(plan)
    if progress and done:
        print(f"loso: {done} of {total} folds already in {results}")
    for i, (name, cfg, path) in enumerate(plan):
        s = cfg["data_options"]["test_speaker"]
        print(f"loso: fold {done + i + 1}/{total}: {name}, test {s}, validation "
              f"{cfg['data_options']['val_speaker']}" + (", Lava" if s == lava_speaker else ""),
              flush=True)
        rec = run_fold(name, cfg, out, s == lava_speaker, progress)
        write_json_atomic(rec, path)
        records[(name, s)] = rec
        print(f"loso: {name} {s}: emulator {rec['emulator_accuracy']:.2%}, float "
              f"{rec['float_accuracy']:.2%} (val {rec['val_speaker']} {rec['val_accuracy']:.2%})"
              + (f", Lava {rec['lava_accuracy']:.2%}" if rec["lava_accuracy"] is not None
                 else ""), flush=True)
        write()
    final = write()
    for name, net in final["networks"].items():
        if net["mean_emulator_accuracy"] is not None:
            print(f"loso: {name}: mean emulator {net['mean_emulator_accuracy']:.2%}, float "
                  f"{net['mean_float_accuracy']:.2%} over {len(net['folds'])} fold(s)"
                  + (f"; missing {', '.join(net['missing'])}" if net["missing"] else ""))
    return final
