"""Hardware profiles: limits, energy and timing figures, each with its source.

A profile is a TOML file in this folder (``loihi2.toml``, ...). Every number is a table

    [limits.max_delay]
    value = 62
    unit = "steps"
    source = "where the number comes from"
    basis = "measured" | "documented" | "proxy" | "simulator"
    note = "optional free text"

- ``measured``: measured on that chip (a paper's measurement, or a run on the hardware);
- ``documented``: stated by the vendor or a paper/library describing that chip;
- ``proxy``: borrowed from another chip or process because none is published for this one
  (the note says which);
- ``simulator``: a property of the simulator/toolchain (e.g. Lava's bit-accurate models).

Sections and their vocabularies (SI units; a key that is absent means "no limit" for limits and
"no figure" for energy/timing):

- ``limits``: see ``LIMIT_KEYS`` (integers, or a bool for ``supports_delays``);
- ``energy``: see ``ENERGY_KEYS`` (joules per operation, watts for power);
- ``timing``: see ``TIMING_KEYS`` (seconds);
- ``reference``: published whole-system results (free keys, any unit) shown for comparison,
  never used in an estimate;
- ``unpublished``: ``key = "why there is no figure"`` for energy/timing/limit keys that are
  deliberately left out, so reports can say "not published" rather than silently zero.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent

BASES = ("measured", "documented", "proxy", "simulator")
KINDS = ("neuromorphic", "dense", "ann")

# key -> (python type, required unit)
LIMIT_KEYS: dict[str, tuple[type, str]] = {
    "max_delay": (int, "steps"),  # largest synaptic delay
    "weight_bits": (int, "bits"),
    "du_bits": (int, "bits"),
    "dv_bits": (int, "bits"),
    "vth_bits": (int, "bits"),
    "bias_mant_bits": (int, "bits"),
    "bias_exp_bits": (int, "bits"),
    "state_bits": (int, "bits"),  # u, v width
    "graded_spike_bits": (int, "bits"),  # payload width; 0 = binary spikes only
    "neurons_per_core": (int, "neurons"),
    "synapse_memory_bytes_per_core": (int, "bytes"),
    "max_fan_in": (int, "axons"),  # input axons per core
    "max_fan_out": (int, "axons"),  # output axons per core
    "cores_per_chip": (int, "cores"),
    "max_chips": (int, "chips"),
    "supports_delays": (bool, "bool"),
    "max_inputs": (int, "channels"),  # whole-network input channels
    "max_hidden_neurons": (int, "neurons"),  # whole network, all hidden layers
    "max_outputs": (int, "neurons"),  # readout neurons
}

ENERGY_KEYS: dict[str, str] = {
    "synop": "J",  # one spike (or payload) delivered over one synapse
    "neuron_update": "J",  # one neuron updated for one step
    "spike_local": "J",  # one spike delivered within its core/tile
    "spike_hop": "J",  # one spike crossing to another core (per hop)
    "static_power": "W",  # power drawn regardless of activity, while the run lasts
    "mac": "J",  # one dense multiply-accumulate (ANN)
    "ac": "J",  # one accumulate (spike-driven, same process as mac)
    "sram_read": "J",  # one 64-bit SRAM read
}

TIMING_KEYS: dict[str, str] = {
    "step_time": "s",  # fixed wall time per step (if the device has one)
    "synop_time": "s",  # per synaptic op, sequential within a core
    "neuron_update_time": "s",  # per neuron update, sequential within a core
    "spike_hop_time": "s",  # per hop of a spike between cores
    "step_sync": "s",  # barrier synchronisation per step
}


class ProfileError(ValueError):
    """A profile name is unknown or a profile file is malformed."""


@dataclass(frozen=True)
class Figure:
    """One number with its unit, source and basis."""

    value: Any  # int | float | bool
    unit: str
    source: str
    basis: str  # one of BASES
    note: str = ""

    def cite(self) -> str:
        note = f"; {self.note}" if self.note else ""
        return f"{self.value} {self.unit} [{self.basis}] {self.source}{note}"


@dataclass
class Profile:
    name: str
    version: str
    description: str
    kind: str  # one of KINDS
    limits: dict[str, Figure]
    energy: dict[str, Figure]
    timing: dict[str, Figure]
    reference: dict[str, Figure] = field(default_factory=dict)
    unpublished: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def limit(self, key: str, default: Any = None) -> Any:
        """The value of a limit, or `default` when the profile sets none (= no limit)."""
        if key not in LIMIT_KEYS:
            raise KeyError(f"unknown limit key {key!r}; known: {', '.join(LIMIT_KEYS)}")
        fig = self.limits.get(key)
        return default if fig is None else fig.value

    def sources(self) -> dict[str, str]:
        """"section.key" -> a one-line citation, for every figure in the profile."""
        out = {}
        for section in ("limits", "energy", "timing", "reference"):
            for key, fig in getattr(self, section).items():
                out[f"{section}.{key}"] = fig.cite()
        for key, why in self.unpublished.items():
            out[f"unpublished.{key}"] = why
        return out


def list_profiles() -> list[str]:
    """Names of the profiles shipped in hw_profiles/ (sorted)."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a profile by name (``"loihi2"``) or by path to a ``.toml`` file.

    Raises ProfileError for an unknown name (listing the known ones) or a malformed file (naming
    the file and the field)."""
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s or "\\" in s:
        path = Path(s)
        if not path.is_file():
            raise ProfileError(f"profile file {path} does not exist")
        by_name = False
    else:
        path = PROFILE_DIR / f"{s}.toml"
        if not path.is_file():
            raise ProfileError(f"unknown hardware profile {s!r}; known profiles: "
                               f"{', '.join(list_profiles())} (or pass a path to a .toml file)")
        by_name = True
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ProfileError(f"{path}: not a TOML text file (byte {e.start} is not UTF-8)") from None
    prof = _parse(data, path)
    if by_name and prof.name != s:
        raise ProfileError(f"{path}: field 'name' is {prof.name!r} but the file is named {s!r}")
    return prof


def _parse(data: dict, path: Path) -> Profile:
    def err(where: str, msg: str) -> ProfileError:
        return ProfileError(f"{path}: {where}: {msg}")

    known_top = {"name", "version", "description", "kind", "limits", "energy", "timing",
                 "reference", "unpublished"}
    for key in data:
        if key not in known_top:
            raise err(key, f"unknown top-level field; known: {', '.join(sorted(known_top))}")
    for key in ("name", "version", "description", "kind"):
        if key not in data:
            raise err(key, "missing field")
        if not isinstance(data[key], str) or not data[key].strip():
            raise err(key, f"must be a non-empty string, got {data[key]!r}")
    if data["kind"] not in KINDS:
        raise err("kind", f"unknown kind {data['kind']!r}; use one of {', '.join(KINDS)}")

    def section(name: str) -> dict:
        sec = data.get(name, {})
        if not isinstance(sec, dict):
            raise err(name, "must be a table")
        return sec

    limits = {}
    for key, raw in section("limits").items():
        if key not in LIMIT_KEYS:
            raise err(f"limits.{key}", f"unknown limit key; known: {', '.join(LIMIT_KEYS)}")
        typ, unit = LIMIT_KEYS[key]
        limits[key] = _figure(raw, f"limits.{key}", typ, unit, err)
    energy = {}
    for key, raw in section("energy").items():
        if key not in ENERGY_KEYS:
            raise err(f"energy.{key}", f"unknown energy key; known: {', '.join(ENERGY_KEYS)}")
        energy[key] = _figure(raw, f"energy.{key}", float, ENERGY_KEYS[key], err)
    timing = {}
    for key, raw in section("timing").items():
        if key not in TIMING_KEYS:
            raise err(f"timing.{key}", f"unknown timing key; known: {', '.join(TIMING_KEYS)}")
        timing[key] = _figure(raw, f"timing.{key}", float, TIMING_KEYS[key], err)
    reference = {key: _figure(raw, f"reference.{key}", None, None, err)
                 for key, raw in section("reference").items()}
    unpublished = {}
    for key, why in section("unpublished").items():
        if key not in LIMIT_KEYS and key not in ENERGY_KEYS and key not in TIMING_KEYS:
            raise err(f"unpublished.{key}", "not a limit, energy or timing key")
        if not isinstance(why, str) or not why.strip():
            raise err(f"unpublished.{key}", "must be a non-empty string saying why")
        if key in limits or key in energy or key in timing:
            raise err(f"unpublished.{key}", "is also given a figure")
        unpublished[key] = why
    return Profile(name=data["name"], version=data["version"], description=data["description"],
                   kind=data["kind"], limits=limits, energy=energy, timing=timing,
                   reference=reference, unpublished=unpublished, path=path)


def _figure(raw: Any, where: str, typ: type | None, unit: str | None, err) -> Figure:
    if not isinstance(raw, dict):
        raise err(where, f"must be a table {{ value, unit, source, basis, note }}, got {raw!r}")
    allowed = {"value", "unit", "source", "basis", "note"}
    for key in raw:
        if key not in allowed:
            raise err(where, f"unknown field {key!r}; allowed: value, unit, source, basis, note")
    for key in ("value", "unit", "source", "basis"):
        if key not in raw:
            raise err(where, f"missing {key!r}")
    value = raw["value"]
    if typ is bool:
        if not isinstance(value, bool):
            raise err(where, f"value must be true or false, got {value!r}")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise err(where, f"value must be an integer, got {value!r}")
        if value < 0:
            raise err(where, f"value must be >= 0, got {value}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise err(where, f"value must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise err(where, f"value must be finite and >= 0, got {value}")
        value = float(value)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise err(where, f"value must be a number, got {value!r}")
    for key in ("unit", "source", "basis"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise err(where, f"{key!r} must be a non-empty string, got {raw[key]!r}")
    if unit is not None and raw["unit"] != unit:
        raise err(where, f"unit must be {unit!r} (SI), got {raw['unit']!r}")
    if raw["basis"] not in BASES:
        raise err(where, f"unknown basis {raw['basis']!r}; use one of {', '.join(BASES)}")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise err(where, f"'note' must be a string, got {note!r}")
    return Figure(value=value, unit=raw["unit"], source=raw["source"], basis=raw["basis"],
                  note=note)
