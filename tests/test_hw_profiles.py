"""Hardware profiles: every shipped profile loads, every number is sourced, bad files are named."""
from pathlib import Path

import pytest

from hw_profiles import (BASES, LIMIT_KEYS, Figure, Profile, ProfileError, list_profiles,
                         load_profile)

SHIPPED = ["ann-45nm", "cpu", "gpu", "loihi1", "loihi2", "spinnaker2", "xylo-audio2"]

GOOD = '''
name = "toy"
version = "1"
kind = "neuromorphic"
description = "a toy chip"

[limits.max_delay]
value = 7
unit = "steps"
source = "the toy datasheet"
basis = "documented"

[energy.synop]
value = 1e-12
unit = "J"
source = "the toy paper"
basis = "measured"
'''


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "toy.toml"
    p.write_text(text)
    return p


def test_list_profiles_names_every_shipped_profile():
    assert list_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_figure_is_sourced(name):
    p = load_profile(name)
    assert isinstance(p, Profile) and p.name == name and p.path.name == f"{name}.toml"
    figs = [*p.limits.values(), *p.energy.values(), *p.timing.values(), *p.reference.values()]
    assert figs
    for fig in figs:
        assert isinstance(fig, Figure)
        assert fig.source.strip() and fig.basis in BASES and fig.unit
    assert len(p.sources()) == len(figs) + len(p.unpublished)


def test_loihi2_energy_is_labelled_loihi1_proxy():
    p = load_profile("loihi2")
    for key in ("synop", "neuron_update", "spike_local", "spike_hop", "static_power"):
        assert p.energy[key].basis == "proxy"
        assert "Loihi 1" in p.energy[key].source
    assert p.energy["static_power"].value == load_profile("loihi1").energy["static_power"].value
    assert p.energy["synop"].value == pytest.approx(23.6e-12)
    assert load_profile("loihi1").energy["synop"].basis == "measured"


def test_limits_used_by_export_check():
    l2, l1 = load_profile("loihi2"), load_profile("loihi1")
    assert l2.limit("max_delay") == 62 and l2.limit("weight_bits") == 8
    assert l2.limit("supports_delays") is True
    for key in ("max_delay", "weight_bits", "du_bits", "dv_bits", "vth_bits", "bias_mant_bits",
                "bias_exp_bits", "state_bits", "graded_spike_bits", "neurons_per_core",
                "synapse_memory_bytes_per_core", "max_fan_in", "max_fan_out", "cores_per_chip",
                "max_chips", "supports_delays"):
        assert key in l2.limits and key in l1.limits, key
    assert l1.limit("neurons_per_core") == 1024 and l1.limit("graded_spike_bits") == 0
    xylo = load_profile("xylo-audio2")
    assert xylo.limit("supports_delays") is False and xylo.limit("max_inputs") == 16
    assert xylo.limit("max_hidden_neurons") == 1000 and xylo.limit("max_outputs") == 8
    # an absent key means no limit
    assert load_profile("gpu").limit("max_delay") is None
    with pytest.raises(KeyError, match="unknown limit key 'max_dealy'"):
        l2.limit("max_dealy")


def test_unknown_name_lists_known_profiles():
    with pytest.raises(ProfileError, match=r"unknown hardware profile 'loihi3'; known profiles: "
                       r"ann-45nm, cpu, gpu, loihi1, loihi2, spinnaker2, xylo-audio2"):
        load_profile("loihi3")


def test_missing_file_path():
    with pytest.raises(ProfileError, match="profile file .*nope.toml does not exist"):
        load_profile("/tmp/definitely/nope.toml")


def test_good_file_by_path(tmp_path):
    p = load_profile(write(tmp_path, GOOD))
    assert p.name == "toy" and p.limits["max_delay"].value == 7
    assert p.energy["synop"].value == 1e-12 and p.timing == {}


@pytest.mark.parametrize("old,new,match", [
    ('source = "the toy datasheet"\n', "", r"toy.toml: limits.max_delay: missing 'source'"),
    ('basis = "documented"', 'basis = "guessed"',
     r"toy.toml: limits.max_delay: unknown basis 'guessed'; use one of measured, documented, "
     r"proxy, simulator"),
    ("value = 7", 'value = "7"', r"toy.toml: limits.max_delay: value must be an integer, got '7'"),
    ("value = 7", "value = 7.5", r"limits.max_delay: value must be an integer, got 7.5"),
    ("value = 1e-12", "value = -1e-12", r"energy.synop: value must be finite and >= 0"),
    ('unit = "J"', 'unit = "pJ"', r"energy.synop: unit must be 'J' \(SI\), got 'pJ'"),
    ("[limits.max_delay]", "[limits.max_dealy]",
     r"limits.max_dealy: unknown limit key; known: max_delay, weight_bits"),
    ("[energy.synop]", "[energy.synapse]", r"energy.synapse: unknown energy key"),
    ('kind = "neuromorphic"', 'kind = "quantum"', r"toy.toml: kind: unknown kind 'quantum'"),
    ('version = "1"\n', "", r"toy.toml: version: missing field"),
    ('source = "the toy paper"', 'source = ""', r"energy.synop: 'source' must be a non-empty"),
    ('basis = "measured"', 'basis = "measured"\nnot_a_field = 1',
     r"energy.synop: unknown field 'not_a_field'"),
    ('name = "toy"', 'name = "toy"\ncolour = "blue"', r"toy.toml: colour: unknown top-level"),
])
def test_malformed_profile_names_file_and_field(tmp_path, old, new, match):
    assert old in GOOD
    with pytest.raises(ProfileError, match=match):
        load_profile(write(tmp_path, GOOD.replace(old, new, 1)))


def test_bool_limit_type_and_unpublished(tmp_path):
    text = GOOD + '\n[limits.supports_delays]\nvalue = 1\nunit = "bool"\nsource = "x"\nbasis = "documented"\n'
    with pytest.raises(ProfileError, match="limits.supports_delays: value must be true or false"):
        load_profile(write(tmp_path, text))
    text = GOOD + '\n[unpublished]\nsynop = "we do know it"\n'
    with pytest.raises(ProfileError, match="unpublished.synop: is also given a figure"):
        load_profile(write(tmp_path, text))
    text = GOOD + '\n[unpublished]\nstatic_power = "not published"\n'
    assert load_profile(write(tmp_path, text)).unpublished == {"static_power": "not published"}


def test_invalid_toml_names_file(tmp_path):
    with pytest.raises(ProfileError, match=r"toy.toml: not valid TOML"):
        load_profile(write(tmp_path, GOOD + "\n[[[broken\n"))


def test_limit_vocabulary_has_types():
    assert LIMIT_KEYS["supports_delays"][0] is bool
    assert all(t in (int, bool) for t, _ in LIMIT_KEYS.values())
