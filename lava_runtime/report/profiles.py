"""The set of hardware profiles a report budgets on (`--profiles all|LIST`), shared by the run
report (build.py) and the report on given spikes (spikes.py)."""
from __future__ import annotations


def parse_profile_set(spec: str) -> list[str]:
    """"all" -> every shipped profile (hw_profiles.list_profiles()); else a comma-separated list
    of profile names or .toml paths."""
    from hw_profiles import list_profiles

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("--profiles must be 'all' or a comma-separated list of profiles, "
                         f"e.g. loihi2,gpu; got {spec!r}")
    if spec.strip() == "all":
        return list_profiles()
    names = [s.strip() for s in spec.split(",")]
    if any(not n for n in names):
        raise ValueError(f"--profiles {spec!r} has an empty entry; use e.g. loihi2,gpu")
    if len(set(names)) != len(names):
        raise ValueError(f"--profiles {spec!r} names a profile twice")
    return names
