"""Training configuration: defaults from trainer/defaults.toml, overrides, validation.

A config is a plain dict with exactly the keys of defaults.toml. ``resolve_config`` merges a
TOML file, keyword overrides and ``key=value`` strings (parsed as TOML values) over the
defaults and validates everything before any work starts.
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

from .layers import DCLS_PATHS, METHODS
from .lif_kernel import KERNELS as LIF_KERNELS

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
MAX_DELAY_STEPS = 62   # lava-dl netx clamps delays to 62; Lava fixed_pt rejects > 63
DATASET_NAMES = ("fsdd", "rawhd", "shd", "ssc", "folder", "synthetic", "tts-digits")
# keys that may differ between a run and its --resume (they do not change the result)
NON_IDENTITY_KEYS = ("device", "data_dir", "num_threads", "sparse_max_density",
                     "sparse_max_density_no_delay", "sparse_max_density_dcls", "lif_kernel")
# keys added after runs and sweep points were recorded: at these (default) values they change
# nothing, and identity() leaves them out, so records made before them still match
LATER_KEYS = {"frontend_norm": "none", "augment_vtlp": 0.0, "augment_time_mask": 0,
              "augment_freq_mask": 0, "augment_masks": 1,
              "recurrent": False, "recurrent_kernel_size": 0, "recurrent_equal_synapses": False,
              # not "nothing" for sparse dcls (sparse path, RigL every 10 sparse-path steps):
              # dcls records made before the key (dense path) still match; delete them to
              # retrain on the new path (docs/sparse_training.md, "DCLS at high sparsity")
              "dcls_path": "auto"}


def load_defaults() -> dict:
    with open(DEFAULTS_PATH, "rb") as f:
        return tomllib.load(f)


def parse_set(items: list[str]) -> dict:
    """Parse ``key=value`` strings; values are TOML (numbers, true/false, [lists], "strings"),
    and a bare word is taken as a string."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key] = value
    return out


def resolve_config(config_file: str | Path | None = None, overrides: dict | None = None,
                   sets: list[str] | None = None) -> dict:
    """Defaults <- config file <- overrides (None values ignored) <- --set items; validated."""
    cfg = load_defaults()
    layers = []
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ValueError(f"config file {path} does not exist")
        with open(path, "rb") as f:
            try:
                layers.append(tomllib.load(f))
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"config file {path} is not valid TOML: {e}") from None
            except UnicodeDecodeError as e:
                raise ValueError(f"config file {path} is not a TOML text file (byte {e.start} "
                                 f"is not UTF-8)") from None
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    layers.append(parse_set(sets or []))
    for layer in layers:
        unknown = sorted(set(layer) - set(cfg))
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(unknown)}; known keys: "
                             f"{', '.join(sorted(cfg))}")
        cfg.update(layer)
    validate_config(cfg)
    return cfg


def _check_type(cfg, key, types, what):
    v = cfg[key]
    if isinstance(v, bool) and bool not in types or not isinstance(v, types):
        raise ValueError(f"{key} must be {what}, got {v!r}")


def validate_config(cfg: dict) -> None:
    """Raise ValueError naming the key, the bad value and what is allowed."""
    if cfg["method"] not in METHODS:
        raise ValueError(f"unknown method {cfg['method']!r}; choose one of {', '.join(METHODS)}")
    if cfg["dataset"] not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {cfg['dataset']!r}; choose one of "
                         f"{', '.join(DATASET_NAMES)}")
    for key in ("sparsity", "tau", "threshold", "surrogate_alpha", "dropout", "lr", "max_lr",
                "lr_positions", "l1", "sigma_final", "sigma_decay_fraction", "val_fraction",
                "sigma_end", "rigl_drop_fraction", "rigl_stop_fraction", "deepr_temperature",
                "sparse_max_density", "sparse_max_density_no_delay", "sparse_max_density_dcls",
                "augment_speed", "augment_noise_db", "input_threshold", "spike_reg",
                "spike_target", "augment_vtlp"):
        _check_type(cfg, key, (int, float), "a number")
        if not math.isfinite(cfg[key]):
            raise ValueError(f"{key} must be finite, got {cfg[key]!r}")
    for key in ("epochs", "seed", "batch_size", "kernel_size", "n_mels", "time_steps",
                "num_threads", "rewire_interval", "augment_shift", "augment_bands",
                "augment_time_mask", "augment_freq_mask", "augment_masks",
                "recurrent_kernel_size"):
        _check_type(cfg, key, (int,), "an integer")
    for key in ("dale", "batchnorm", "drop_disconnected", "recurrent",
                "recurrent_equal_synapses"):
        _check_type(cfg, key, (bool,), "true or false")
    for key in ("dataset", "data_dir", "device", "method", "regrow", "frontend_norm",
                "dcls_path", "lif_kernel"):
        _check_type(cfg, key, (str,), "a string")
    if cfg["lif_kernel"] not in LIF_KERNELS:
        raise ValueError(f"lif_kernel must be one of {', '.join(LIF_KERNELS)}, got "
                         f"{cfg['lif_kernel']!r}")
    if cfg["dcls_path"] not in DCLS_PATHS:
        raise ValueError(f"dcls_path must be one of {', '.join(DCLS_PATHS)}, got "
                         f"{cfg['dcls_path']!r}")
    if not 0 <= cfg["sparsity"] < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {cfg['sparsity']}")
    K = cfg["kernel_size"]
    if K < 1:
        raise ValueError(f"kernel_size must be >= 1 (delays 0..K-1 steps), got {K}")
    if K - 1 > MAX_DELAY_STEPS:
        raise ValueError(f"kernel_size {K} gives a maximum delay of {K - 1} steps, above the "
                         f"hardware limit of {MAX_DELAY_STEPS}; use kernel_size <= "
                         f"{MAX_DELAY_STEPS + 1}")
    Kr = cfg["recurrent_kernel_size"]
    if Kr < 0 or Kr - 1 > MAX_DELAY_STEPS:
        raise ValueError(f"recurrent_kernel_size must be 0 (= kernel_size) or 1.."
                         f"{MAX_DELAY_STEPS + 1} (recurrent delays 0..Kr-1 steps, at most the "
                         f"hardware limit of {MAX_DELAY_STEPS}), got {Kr}")
    if cfg["recurrent_equal_synapses"] and not cfg["recurrent"]:
        raise ValueError("recurrent_equal_synapses = true needs recurrent = true (it splits "
                         "the synapse count between feed-forward and recurrent synapses)")
    if cfg["epochs"] < 1 or cfg["batch_size"] < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if cfg["num_threads"] < 0:
        raise ValueError(f"num_threads must be >= 0 (0 = torch's default), "
                         f"got {cfg['num_threads']}")
    if cfg["seed"] < 0:
        raise ValueError(f"seed must be >= 0, got {cfg['seed']}")
    if not 0 <= cfg["dropout"] < 1:
        raise ValueError(f"dropout must be in [0, 1), got {cfg['dropout']}")
    if not (cfg["sigma_final"] > 0 and 0 <= cfg["sigma_end"] <= cfg["sigma_final"]):
        raise ValueError(f"need sigma_final > 0 and 0 <= sigma_end <= sigma_final, got "
                         f"{cfg['sigma_final']} and {cfg['sigma_end']}")
    if cfg["max_lr"] < cfg["lr"]:
        raise ValueError(f"max_lr ({cfg['max_lr']}) must be >= lr ({cfg['lr']})")
    if not 0 < cfg["sigma_decay_fraction"] <= 1:
        raise ValueError(f"sigma_decay_fraction must be in (0, 1], got "
                         f"{cfg['sigma_decay_fraction']}")
    if not 0 < cfg["val_fraction"] < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {cfg['val_fraction']}")
    if not isinstance(cfg["data_options"], dict):
        raise ValueError(f"data_options must be a table, got {cfg['data_options']!r}")
    hidden = cfg["hidden"]
    if not (isinstance(hidden, list) and hidden
            and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty list of positive layer sizes, got {hidden!r}")
    if cfg["tau"] <= 0 or cfg["lr"] <= 0 or cfg["max_lr"] <= 0 or cfg["lr_positions"] <= 0:
        raise ValueError("tau, lr, max_lr and lr_positions must be > 0")
    if cfg["spike_reg"] < 0 or not 0 <= cfg["spike_target"] <= 1:
        raise ValueError(f"need spike_reg >= 0 and spike_target in [0, 1] (spikes per neuron "
                         f"per step), got {cfg['spike_reg']} and {cfg['spike_target']}")
    if cfg["input_threshold"] < 0:
        raise ValueError(f"input_threshold must be >= 0 (feature units), "
                         f"got {cfg['input_threshold']}")
    if cfg["l1"] < 0:
        raise ValueError(f"l1 must be >= 0, got {cfg['l1']}")
    if cfg["rewire_interval"] < 0:
        raise ValueError(f"rewire_interval must be >= 1 step, or 0 (auto), got "
                         f"{cfg['rewire_interval']}")
    if not 0 <= cfg["rigl_drop_fraction"] < 1:
        raise ValueError(f"rigl_drop_fraction must be in [0, 1), got {cfg['rigl_drop_fraction']}")
    if not 0 < cfg["rigl_stop_fraction"] <= 1:
        raise ValueError(f"rigl_stop_fraction must be in (0, 1], got {cfg['rigl_stop_fraction']}")
    if cfg["regrow"] not in ("gradient", "random"):
        raise ValueError(f"regrow must be gradient or random, got {cfg['regrow']!r}")
    if cfg["deepr_temperature"] < 0:
        raise ValueError(f"deepr_temperature must be >= 0, got {cfg['deepr_temperature']}")
    for key in ("sparse_max_density", "sparse_max_density_no_delay", "sparse_max_density_dcls"):
        if not 0 <= cfg[key] <= 1:
            raise ValueError(f"{key} must be in [0, 1] (0 = always the dense path), got "
                             f"{cfg[key]}")
    from .neurons import decay_from_tau
    decay_from_tau(cfg["tau"])
    from .augment import Augmentation
    Augmentation.from_config(cfg)
    _check_frontend_keys(cfg)
    dev = cfg["device"]
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {dev!r}")


def _check_frontend_keys(cfg: dict) -> None:
    """frontend_norm and augment_vtlp need Mel features; noise augmentation needs dB ones."""
    from .data import source_has_frontend
    from .data.frontend import NORMS

    if cfg["frontend_norm"] not in NORMS:
        raise ValueError(f"frontend_norm must be one of {', '.join(NORMS)}, got "
                         f"{cfg['frontend_norm']!r}")
    audio = source_has_frontend(cfg["dataset"])
    for key, on in (("frontend_norm", cfg["frontend_norm"] != "none"),
                    ("augment_vtlp", cfg["augment_vtlp"] > 0)):
        if on and not audio:
            raise ValueError(f"{key} needs Mel features from an audio front end; dataset "
                             f"{cfg['dataset']!r} has none")
    if cfg["frontend_norm"] != "none" and cfg["augment_noise_db"] > 0:
        raise ValueError("augment_noise_db mixes noise in the dB domain of frontend_norm = "
                         "\"none\" features; turn it off with frontend_norm = "
                         f"{cfg['frontend_norm']!r}")


def identity(cfg: dict) -> dict:
    """The part of a config that defines a run (compared on --resume and for RUN_DIR reuse);
    LATER_KEYS at their defaults are left out."""
    return {k: v for k, v in cfg.items() if k not in NON_IDENTITY_KEYS
            and not (k in LATER_KEYS and v == LATER_KEYS[k])}
