"""hw_profiles: hardware limits, energy and timing figures with their sources (TOML files here).

    from hw_profiles import load_profile, list_profiles
    p = load_profile("loihi2")
    p.limits["max_delay"].value, p.limits["max_delay"].source, p.energy["synop"].basis
"""
from hw_profiles.profile import (
                                 BASES,
                                 ENERGY_KEYS,
                                 KINDS,
                                 LIMIT_KEYS,
                                 PROFILE_DIR,
                                 TIMING_KEYS,
                                 Figure,
                                 Profile,
                                 ProfileError,
                                 list_profiles,
                                 load_profile,
)

__all__ = ["BASES", "ENERGY_KEYS", "KINDS", "LIMIT_KEYS", "PROFILE_DIR", "TIMING_KEYS", "Figure",
           "Profile", "ProfileError", "list_profiles", "load_profile"]
