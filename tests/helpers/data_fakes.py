"""Small fake datasets in the real formats, written by the data tests (not a test module)."""
from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf


def tone(freq_hz: float, sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.4 * np.sin(2 * np.pi * freq_hz * t) + noise).astype(np.float64)


def write_rawhd(root: Path, sr: int = 16000) -> Path:
    """A Heidelberg Digits folder: 3 speakers x 2 languages x 2 digits x 2 trials, FLAC."""
    (root / "audio").mkdir(parents=True)
    train, test = [], []
    for spk in ("01", "02", "03"):
        for lang in ("english", "german"):
            for digit in (0, 3):
                for trial in (0, 1):
                    name = f"lang-{lang}_speaker-{spk}_trial-{trial}_digit-{digit}.flac"
                    freq = 300 + 200 * digit + (700 if lang == "german" else 0)
                    sf.write(root / "audio" / name, tone(freq, sr, 0.3, seed=trial), sr,
                             format="FLAC", subtype="PCM_16")
                    (test if trial == 1 and spk == "03" else train).append(name)
    (root / "train_filenames.txt").write_text("\n".join(train) + "\n")
    (root / "test_filenames.txt").write_text("\n".join(test) + "\n")
    return root


def write_class_folder(root: Path, classes=("bark", "meow", "moo"), per_class: int = 10,
                       sr: int = 8000) -> Path:
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            sf.write(root / cls / f"{cls}_{i}.wav", tone(400 + 300 * k, sr, 0.25, seed=i), sr,
                     subtype="PCM_16")
    return root


def fsdd_release_zip(path: Path, speakers=("george", "theo"), digits=(0, 1), takes=(0, 1, 5, 6),
                     top: str = "free-spoken-digit-dataset-1.0.10", sr: int = 8000) -> Path:
    """A small zip laid out like GitHub's archive of an FSDD release: ``<top>/recordings/
    {digit}_{speaker}_{take}.wav`` plus top-level README.md and a utility script folder."""
    import zipfile
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/README.md", "# Free Spoken Digit Dataset (test copy)\n")
        zf.writestr(f"{top}/utils/trimmer.py", "# not needed\n")
        for d in digits:
            for k, spk in enumerate(speakers):
                for take in takes:
                    buf = io.BytesIO()
                    sf.write(buf, tone(300 + 250 * d + 40 * k, sr, 0.3, seed=take), sr,
                             format="WAV", subtype="PCM_16")
                    zf.writestr(f"{top}/recordings/{d}_{spk}_{take}.wav", buf.getvalue())
    return path


def write_shd(path: Path, times: list, units: list, labels, speakers, drop: str | None = None,
              keys: list[str] | None = None) -> Path:
    """An SHD-format HDF5 file (ragged vlen datasets, also SSC's layout); ``drop`` leaves one
    key out; ``keys``: class names written as extra/keys (bytes), as SSC files carry them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        if drop != "spikes/times":
            d = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
            for i, t in enumerate(times):
                d[i] = np.asarray(t, dtype=np.float32)
        if drop != "spikes/units":
            d = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, u in enumerate(units):
                d[i] = np.asarray(u, dtype=np.uint16)
        if drop != "labels":
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        if drop != "extra/speaker":
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint8))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
    return path
