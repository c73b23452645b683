"""tts-digits (espeak-ng voices, generated from a seed, cached, checksummed), FSDD with those voices
added to training only, and nested validation by a held-out speaker."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from trainer.data import DataError, load_dataset
from trainer.data import tts_digits as tts
from trainer.data.validation_split import carve_validation

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (Debian package espeak-ng; sh tools/ensure_espeak.sh "
           "installs it as root, make test runs that script)")


@needs_espeak
def test_generation_is_reproducible_checksummed_and_cached(tmp_path):
    a_dir, a = tts.corpus(voices=3, takes=2, voice_seed=5, cache_dir=tmp_path / "a")
    b_dir, b = tts.corpus(voices=3, takes=2, voice_seed=5, cache_dir=tmp_path / "b")
    assert a["digest"] == b["digest"] and a_dir.name == b_dir.name        # same seed, same audio
    assert len(a["files"]) == 3 * 10 * 2 and len(set(a["files"].values())) == 60
    assert len({v["voice"] for v in a["voices"]}) == 3
    for v in a["voices"]:                                                 # takes jitter
        assert v["pitch"][0] != v["pitch"][1] or v["speed"][0] != v["speed"][1]
    mtimes = {p.name: p.stat().st_mtime_ns for p in a_dir.glob("*.wav")}
    again_dir, _ = tts.corpus(voices=3, takes=2, voice_seed=5, cache_dir=tmp_path / "a")
    assert again_dir == a_dir and {p.name: p.stat().st_mtime_ns
                                   for p in a_dir.glob("*.wav")} == mtimes   # from the cache
    _, other = tts.corpus(voices=3, takes=2, voice_seed=6, cache_dir=tmp_path / "a")
    assert other["digest"] != a["digest"]
    assert not list((tmp_path / "a" / tts.NAME).glob(".*"))                # no temp folders left
    victim = a_dir / sorted(a["files"])[0]
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(DataError, match=f"does not match its manifest checksum; delete {a_dir}"):
        tts.corpus(voices=3, takes=2, voice_seed=5, cache_dir=tmp_path / "a")


@needs_espeak
def test_splits_hold_out_whole_voices(tmp_path):
    kw = {"cache_dir": tmp_path, "voices": 5, "test_voices": 1, "voice_seed": 1}
    tr, va, te = (load_dataset("tts-digits", s, **kw) for s in ("train", "val", "test"))
    spk = [{m["speaker"] for m in d.meta} for d in (tr, va, te)]
    assert spk[2] == {"tts004"} and len(spk[1]) == 1 and not (spk[0] & spk[1])
    assert len(tr) + len(va) == 40 and len(te) == 10
    assert te.x.shape[1:] == (100, 40) and float(te.x.max()) == pytest.approx(80 * 0.00099)
    assert te.recipe["frontend"]["resample_hz"] == 8000 and sorted(te.y.tolist()) == list(range(10))
    manifest = json.loads(next((tmp_path / tts.NAME).glob("*/manifest.json")).read_text())
    assert te.meta[0]["voice"] == manifest["voices"][4]["voice"]


def test_missing_espeak_fails_at_once_naming_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="needs espeak-ng.*package espeak-ng"):
        load_dataset("tts-digits", "train", cache_dir=tmp_path)
    assert not (tmp_path / tts.NAME).exists()
    with pytest.raises(DataError, match="test_voices=9 leaves fewer than 2"):
        load_dataset("tts-digits", "train", cache_dir=tmp_path, voices=10, test_voices=9)


def test_validation_by_named_speaker_and_train_only_rows():
    meta = [{"speaker": s, "take": t} for s in ("ann", "bob", "cy") for t in range(4)]
    meta += [{"speaker": "tts000", "take": t, "train_only": True} for t in range(4)]
    y = np.arange(len(meta)) % 2
    tr, va = carve_validation(y, meta, "takes", 0.1, 0, held_speakers=["bob"])
    assert [meta[i]["speaker"] for i in va] == ["bob"] * 4 and len(tr) == 12
    tr, va = carve_validation(y, meta, "speakers", 0.3, 3)   # round(0.9) = 1 of 3
    assert not any(meta[i].get("train_only") for i in va) and len(va) == 4 and len(tr) == 12
    with pytest.raises(DataError, match="validation speaker.*'tts000'.*not in the training"):
        carve_validation(y, meta, "takes", 0.1, 0, held_speakers=["tts000"])


@needs_espeak
def test_fsdd_nested_validation_and_synthetic_voices_in_training_only(tmp_path):
    from test_loso import write_fsdd_like
    write_fsdd_like(tmp_path / "rec")
    kw = {"cache_dir": tmp_path, "test_speaker": "ann", "val_speaker": "cy", "tts_voices": 2}
    tr, va, te = (load_dataset("fsdd", s, tmp_path / "rec", **kw)
                  for s in ("train", "val", "test"))
    assert {m["speaker"] for m in va.meta} == {"cy"} and len(va) == 20
    assert {m["speaker"] for m in te.meta} == {"ann"} and len(te) == 20
    real = [m for m in tr.meta if not m.get("train_only")]
    assert len(real) == 20 and {m["speaker"] for m in real} == {"bob"}
    assert sum(bool(m.get("train_only")) for m in tr.meta) == 20          # 2 voices x 10 digits
    assert va.recipe["val_strategy"] == "speakers cy" and va.recipe["options"]["tts_voices"] == 2
    with pytest.raises(DataError, match="val_speaker and test_speaker are both 'ann'"):
        load_dataset("fsdd", "train", tmp_path / "rec", cache_dir=tmp_path, test_speaker="ann",
                     val_speaker="ann")
    with pytest.raises(DataError, match="val_speaker 'nobody' is not a training speaker"):
        load_dataset("fsdd", "train", tmp_path / "rec", cache_dir=tmp_path,
                     test_speaker="ann", val_speaker="nobody")


@needs_espeak
def test_ensure_espeak_is_idempotent_when_installed():
    import subprocess
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "tools" / "ensure_espeak.sh"
    r = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True)
    assert r.stdout.startswith(f"ensure_espeak: {shutil.which('espeak-ng')} is installed")


needs_flite = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="espeak-ng or flite is not installed (Debian packages espeak-ng, flite; sh "
           "tools/ensure_espeak.sh installs both as root, make test runs that script)")


@needs_flite
def test_flite_voices_come_after_the_espeak_ones_from_their_own_draw(tmp_path):
    plain_dir, plain = tts.corpus(voices=2, takes=2, voice_seed=3, cache_dir=tmp_path)
    both_dir, both = tts.corpus(voices=2, takes=2, voice_seed=3, cache_dir=tmp_path,
                                flite_voices=2)
    assert both_dir != plain_dir and "flite" not in plain["settings"]     # own cache folder
    assert both["settings"]["flite"]["voices"] == 2
    assert both["voices"][:2] == plain["voices"]                          # espeak draws kept
    fl = both["voices"][2:]
    assert [v["speaker"] for v in fl] == ["fl000", "fl001"]
    assert all(v["engine"] == "flite" and v["voice"] in tts.FLITE_VOICES for v in fl)
    for v in fl:
        assert tts.FLITE_F0[0] - 10 <= min(v["f0_hz"]) and max(v["f0_hz"]) <= tts.FLITE_F0[1] + 10
        assert v["f0_hz"][0] != v["f0_hz"][1] or v["duration_stretch"][0] != \
            v["duration_stretch"][1]                                      # takes jitter
    for name, sha in plain["files"].items():                              # same espeak audio
        assert both["files"][name] == sha
    assert len(both["files"]) == 4 * 10 * 2
    _, again = tts.corpus(voices=2, takes=2, voice_seed=3, cache_dir=tmp_path / "b",
                          flite_voices=2)
    assert again["digest"] == both["digest"]                              # reproducible
    te = load_dataset("tts-digits", "test", cache_dir=tmp_path, voices=3, flite_voices=1,
                      test_voices=1)
    assert {m["speaker"] for m in te.meta} == {"fl000"} and len(te) == 10
    assert {m["engine"] for m in te.meta} == {"flite"} and "f0_hz" in te.meta[0]
    assert np.isfinite(te.x).all() and float(te.x.max()) > 0


@needs_flite
def test_fsdd_adds_flite_voices_to_training_only(tmp_path):
    from test_loso import write_fsdd_like
    write_fsdd_like(tmp_path / "rec")
    kw = {"cache_dir": tmp_path, "test_speaker": "ann", "val_speaker": "cy", "tts_voices": 1,
          "tts_flite_voices": 2}
    tr = load_dataset("fsdd", "train", tmp_path / "rec", **kw)
    synth = [m for m in tr.meta if m.get("train_only")]
    assert len(synth) == 30 and sum(m.get("engine") == "flite" for m in synth) == 20
    with pytest.raises(DataError, match="set tts_voices >= 1 too"):
        load_dataset("fsdd", "train", tmp_path / "rec", cache_dir=tmp_path, tts_flite_voices=1)


def test_missing_flite_fails_at_once_naming_the_package(tmp_path, monkeypatch):
    real = tts.shutil.which
    monkeypatch.setattr(tts.shutil, "which", lambda name: None if name == "flite" else real(name))
    with pytest.raises(DataError, match="needs flite.*package flite"):
        load_dataset("tts-digits", "train", cache_dir=tmp_path, flite_voices=1)
    assert not (tmp_path / tts.NAME).exists()
