"""Every shipped config in configs/ is valid for the trainer and says how it is used."""
from __future__ import annotations

from pathlib import Path

import pytest

from trainer.config import resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_resolves_and_names_its_command(path):
    cfg = resolve_config(str(path), {})
    assert cfg["dataset"] in ("fsdd", "shd", "rawhd", "synthetic", "folder", "tts-digits")
    head = path.read_text().split("\n\n")[0]
    assert "python -m" in head, f"{path.name}: its header comment should show the command"


def test_voices_configs_add_only_the_winning_levers_to_their_base():
    """configs/*-voices.toml = their base config plus the screen's winner (voice_levers.json)."""
    import json

    root = CONFIGS[0].parent
    winner = json.loads((root.parent / "docs/results/voice_levers.json").read_text())["winner"]
    for voices, base in (("fsdd-sparse-voices.toml", "fsdd-sparse.toml"),
                         ("fsdd-dense-voices.toml", "fsdd-dense.toml")):
        a, b = resolve_config(str(root / voices), {}), resolve_config(str(root / base), {})
        diff = {k: a[k] for k in a if a[k] != b.get(k)}
        want = dict(winner["sets"])
        want["data_options"] = {**b["data_options"], **want.get("data_options", {})}
        assert diff == want, voices
