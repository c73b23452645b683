"""Did a training run finish? `run_status(RUN_DIR)` -> `RunStatus`, with a one-line message.

`python -m trainer train` writes config.json first, then checkpoint.pt (the best epoch by
validation so far) and last.pt (resume state) after every epoch, and metrics.json only at the
very end, after the test evaluation (trainer.train._finish). A run folder without metrics.json
was therefore stopped (killed, or `stop_after_epoch`) and its checkpoint.pt is a snapshot of an
unfinished run; `--resume` continues it from last.pt.

    st = run_status("runs/x")
    st.finished, st.checkpoint_epoch, st.epochs_planned, st.message

Only training run folders have a status: `training_run_dir(path)` says whether a path (a folder
or its checkpoint.pt) is one. Other checkpoints (export.qat's output folder, a copied .pt file)
are not, and `run_status` refuses them; callers that accept both check `training_run_dir` first.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import (
    CHECKPOINT,
    CONFIG,
    LAST,
    METRICS,
    CheckpointError,
    load_checkpoint_dict,
    load_resume,
)
from .config import load_defaults
from .file_io import read_json_file

# config key -> the named flag of `python -m trainer train` (trainer/__main__.py); every other
# key goes through --set. "device" is left out of resume commands: it does not change the run
# (config.NON_IDENTITY_KEYS) and the machine that resumes may have other devices.
_FLAGS = {"dataset": "--dataset", "data_dir": "--data-dir", "method": "--method",
          "sparsity": "--sparsity", "epochs": "--epochs", "seed": "--seed",
          "batch_size": "--batch-size", "kernel_size": "--kernel-size"}
_NOT_IN_COMMAND = ("device",)


@dataclass(frozen=True)
class RunStatus:
    """finished: training wrote its final metrics.json; checkpoint_epoch: the epoch (1-based)
    checkpoint.pt was saved at (the best by validation); epochs_planned: the config's epochs;
    message: one line saying which, and for an unfinished run how to resume it."""

    finished: bool
    checkpoint_epoch: int
    epochs_planned: int
    message: str


def training_run_dir(path: str | Path) -> Path | None:
    """The training run folder `path` is (a folder) or holds checkpoint.pt of, or None when it
    is no training run (no config.json, last.pt or metrics.json there)."""
    p = Path(path)
    if p.is_dir():
        folder = p
    elif p.name == CHECKPOINT:
        folder = p.parent
    else:
        return None
    return folder if any((folder / f).is_file() for f in (CONFIG, LAST, METRICS)) else None


def _toml(v) -> str:
    """A config value as the TOML text `--set key=VALUE` parses back to the same value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = [k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in v]
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in zip(keys, v.values())) + "}"
    raise TypeError(f"config value {v!r} has no TOML form")


def resume_command(run_dir: str | Path, config: dict) -> str:
    """`python -m trainer train --out RUN_DIR --resume` plus the options that give `config`
    (every key that differs from trainer/defaults.toml, device aside), shell-quoted."""
    defaults = load_defaults()
    args = ["python", "-m", "trainer", "train", "--out", str(run_dir), "--resume"]
    changed = {k: v for k, v in config.items()
               if k not in _NOT_IN_COMMAND and k in defaults and defaults[k] != v}
    sets = []
    for key, value in changed.items():
        if key == "dale" and value is True:
            args.append("--dale")
        elif key in _FLAGS and not isinstance(value, (list, dict)):
            args += [_FLAGS[key], value if isinstance(value, str) else repr(value)]
        else:
            sets += ["--set", f"{key}={_toml(value)}"]
    return shlex.join(args + sets)


def _stored_config(run_dir: Path) -> dict | None:
    """config.json's config (written when training starts), or None if absent or unreadable."""
    try:
        cfg = read_json_file(run_dir / CONFIG)["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return cfg if isinstance(cfg, dict) else None


def run_status(run_dir: str | Path) -> RunStatus:
    """The state of the training run in `run_dir` (see the module docstring).

    Raises CheckpointError when `run_dir` is no training run folder, when it has no
    checkpoint.pt yet (the message says how to resume) or when checkpoint.pt is unreadable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist")
    if training_run_dir(run_dir) is None:
        raise CheckpointError(f"{run_dir} is not a training run folder (no {CONFIG}, {LAST} or "
                              f"{METRICS}); pass a folder written by `python -m trainer train`")
    stored = _stored_config(run_dir)
    finished = (run_dir / METRICS).is_file()
    if not (run_dir / CHECKPOINT).is_file():
        if stored is None or finished:
            raise CheckpointError(f"run folder {run_dir} has no {CHECKPOINT}; train again with "
                                  f"another --out")
        raise CheckpointError(f"{run_dir} stopped before its first epoch ended (no {CHECKPOINT}): "
                              f"resume with `{resume_command(run_dir, stored)}`")
    ckpt = load_checkpoint_dict(run_dir / CHECKPOINT)
    config = stored if stored is not None else dict(ckpt["config"])
    k = int(ckpt["epoch"])
    # a config that does not name its epochs (checkpoints made by hand or by tools, not by
    # `trainer train`, whose config is fully resolved) planned the epoch it holds
    planned = int(config.get("epochs", k))
    if finished:
        return RunStatus(True, k, planned, f"{run_dir} finished its {planned} epochs "
                                           f"(checkpoint.pt: epoch {k}, the best by validation)")
    ck_note = f"checkpoint.pt is from epoch {k}, the best by validation so far"
    if not (run_dir / LAST).is_file():
        return RunStatus(False, k, planned, f"{run_dir} stopped without {METRICS} or {LAST} "
                         f"({ck_note}, of {planned} planned) and cannot be resumed; train again "
                         f"with another --out")
    try:
        done = int(load_resume(run_dir / LAST)["epoch"])
    except CheckpointError as e:
        return RunStatus(False, k, planned, f"{run_dir} stopped without {METRICS} ({ck_note}, "
                         f"of {planned} planned) and cannot be resumed: {e}")
    resume = resume_command(run_dir, config)
    if done >= planned:
        msg = (f"{run_dir} trained all {planned} epochs but stopped before its final test "
               f"evaluation (no {METRICS}): resume with `{resume}` to finish it")
    else:
        note = f"; {ck_note}" if k != done else ""
        msg = (f"{run_dir} stopped after epoch {done} of {planned} (no {METRICS}{note}): "
               f"resume with `{resume}`")
    return RunStatus(False, k, planned, msg)
