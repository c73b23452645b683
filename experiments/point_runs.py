"""Sweep points with the run folders that hold their files, for the commands that measure the
deployed networks point by point (experiments.lava_points, experiments.fidelity_agreement) and
resume by each net.h5's sha256."""
from __future__ import annotations

import hashlib
from pathlib import Path

from trainer.file_io import read_json_file


def point_runs(results, runs, json_path, files: tuple[str, ...] = ("net.h5",),
               groups: list[str] | None = None) -> list[tuple[dict, Path]]:
    """[(point JSON, its run folder)] for every point JSON in ``results`` (only ``groups``
    when given). The folder is RUNS/{name}, or that of the point it shares its run with
    (``same_run_as``: the sweep trains such twins once). ValueError before any work when
    ``results`` is not a folder, ``json_path``'s folder does not exist, no point is found or a
    run lacks one of ``files``."""
    results, runs, json_path = Path(results), Path(runs), Path(json_path)
    if not results.is_dir():
        raise ValueError(f"--results {results} is not a folder of point JSONs")
    if not json_path.parent.is_dir():
        raise ValueError(f"--json: folder {json_path.parent} does not exist")
    points = [read_json_file(p) for p in sorted(results.glob("*.json"))]
    points = [p for p in points if groups is None or p["group"] in groups]
    if not points:
        raise ValueError(f"no point JSON{' of groups ' + ', '.join(groups) if groups else ''} "
                         f"in {results}")
    out = [(p, runs / (p.get("same_run_as") or p["name"])) for p in points]
    missing = [p["name"] for p, folder in out
               if not all((folder / f).is_file() for f in files)]
    if missing:
        raise ValueError(f"no {' or '.join(files)} in {runs} for {', '.join(missing)}; run the "
                         f"sweep with --runs {runs} (or pass the folder that holds its runs)")
    return out


def held_for(record: dict, name: str, net: Path) -> tuple[bool, str]:
    """(whether ``record["points"]`` holds point ``name`` measured on this very file, the
    file's sha256): a point whose network was exported again since is measured again."""
    sha = hashlib.sha256(Path(net).read_bytes()).hexdigest()
    return record["points"].get(name, {}).get("net_sha256") == sha, sha
