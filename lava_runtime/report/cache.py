"""Stage cache of `python -m lava_runtime report`: RUN_DIR/report/manifest.json.

Each stage (export, float, emulator, lava, budget, analysis) records the key it was computed
from (checkpoint / network / data SHA-256, options) and the files it wrote, relative to the
report folder. A stage is reused only when its recorded key equals the current one and all its
files exist; otherwise it is recomputed and re-recorded. Every write is atomic (temp file in the
same folder, then os.replace).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from trainer.file_io import write_json_atomic

MANIFEST = "manifest.json"
FORMAT = "delaysnn-report-manifest"


def sha256_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over the dtype, shape and bytes of each array (a data fingerprint)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


class StageCache:
    """The manifest of one report folder (which must exist)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self.stages: dict[str, dict] = {}
        self.problem: str | None = None  # why an existing manifest was not usable
        if self.path.is_file():
            try:
                data = read_json(self.path)
                if data.get("format") != FORMAT or not isinstance(data.get("stages"), dict):
                    raise ValueError(f"format is not {FORMAT}")
                self.stages = data["stages"]
            except (ValueError, OSError) as e:
                self.problem = f"{self.path} is unreadable ({e}); every stage is recomputed"

    def fresh(self, stage: str, key: dict) -> bool:
        """Whether `stage` was computed from `key` and all its files are still there."""
        entry = self.stages.get(stage)
        if entry is None or entry.get("key") != json.loads(json.dumps(key)):
            return False
        return all((self.folder / f).is_file() for f in entry.get("files", []))

    def record(self, stage: str, key: dict, files: list[str]) -> None:
        self.stages[stage] = {"key": key, "files": list(files)}
        write_json_atomic({"format": FORMAT, "version": 1, "stages": self.stages}, self.path)
