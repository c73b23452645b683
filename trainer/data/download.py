"""Downloading SHD, the Heidelberg Digits audio and FSDD, with checksum verification.

SHD and HD audio come from the Zenke lab (``https://zenkelab.org/datasets/``), FSDD from the
GitHub archive of its tagged release v1.0.10. Each request has a short socket timeout (default
10 s): on a machine that cannot reach the host the call fails within seconds with a DataError
naming the file to fetch by hand and where to put it. Files are written to a temp file in the
target folder and moved into place only after their checksum (MD5 or SHA-256) matched.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .errors import DataError

BASE_URL = "https://zenkelab.org/datasets/"
#: MD5 of the archives as published (also used by tonic and SpikingJelly).
SHD_MD5 = {"shd_train.h5.zip": "f3252aeb598ac776c1b526422d90eecb",
           "shd_test.h5.zip": "1503a5064faa34311c398fb0a1ed0a6f"}
HD_AUDIO = "hd_audio.tar.gz"
MD5SUMS = "md5sums.txt"  # the host's list of checksums; hd_audio.tar.gz is checked against it
DEFAULT_TIMEOUT_S = 10.0


def _hand_hint(name: str, url: str, dest: Path, then: str = "") -> str:
    return f"download {url} by hand and place {name} at {dest}{then}"


def download_file(url: str, dest: Path, md5: str | None = None, *, sha256: str | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S, then: str = "",
                  hint: str | None = None) -> Path:
    """Fetch ``url`` to ``dest`` (atomically); check its MD5 and/or SHA-256 when given.
    Returns ``dest``.

    Any network failure or timeout (``timeout_s`` seconds per socket operation) raises a
    DataError naming the file and where to place it; a checksum mismatch raises a DataError and
    leaves no file behind. ``then``: text appended to the hint (e.g. how to unpack); ``hint``:
    replaces the default hint ("download URL by hand and place NAME at DEST").
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hint = _hand_hint(dest.name, url, dest, then) if hint is None else hint
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    digests = {"md5": (hashlib.md5(), md5), "sha256": (hashlib.sha256(), sha256)}
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, os.fdopen(fd, "wb") as out:
                fd = None  # type: ignore[assignment]
                while chunk := resp.read(1 << 20):
                    for h, _ in digests.values():
                        h.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, socket.timeout, TimeoutError, OSError) as exc:
            raise DataError(f"cannot download {dest.name} from {url} ({exc}); {hint}") from exc
        for algo, (h, expected) in digests.items():
            if expected is not None and h.hexdigest() != expected.lower():
                raise DataError(f"checksum mismatch for {dest.name} from {url}: {algo} "
                                f"{h.hexdigest()}, expected {expected}; {hint}")
        os.replace(tmp, dest)
    finally:
        if fd is not None:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def fetch_shd(data_dir, split: str, *, base_url: str = BASE_URL,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Make ``<data_dir>/shd_<split>.h5`` exist: download and unzip the archive if missing."""
    if split not in ("train", "test"):
        raise DataError(f"SHD split must be 'train' or 'test', got {split!r}")
    data_dir = Path(data_dir)
    target = data_dir / f"shd_{split}.h5"
    if target.is_file():
        return target
    name = f"shd_{split}.h5.zip"
    archive = download_file(base_url + name, data_dir / name, SHD_MD5[name], timeout_s=timeout_s,
                            then=f" (then unzip it so that {target} exists)")
    with zipfile.ZipFile(archive) as zf:
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=data_dir)
        try:
            with zf.open(target.name) as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


def parse_md5sums(text: str) -> dict[str, str]:
    """{file name: md5} from ``md5sum`` output lines ("<md5>  <name>")."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:
            out[Path(parts[1].lstrip("*")).name] = parts[0].lower()
    return out


def fetch_hd_audio(data_dir, *, base_url: str = BASE_URL,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Make ``data_dir`` hold the unpacked Heidelberg Digits audio (train_filenames.txt, audio/).

    Downloads md5sums.txt, then hd_audio.tar.gz checked against it, then unpacks it.
    """
    data_dir = Path(data_dir)
    if (data_dir / "train_filenames.txt").is_file() and (data_dir / "audio").is_dir():
        return data_dir
    sums_path = download_file(base_url + MD5SUMS, data_dir / MD5SUMS, None, timeout_s=timeout_s)
    sums = parse_md5sums(sums_path.read_text())
    if HD_AUDIO not in sums:
        raise DataError(f"{sums_path} lists no checksum for {HD_AUDIO}; "
                        + _hand_hint(HD_AUDIO, base_url + HD_AUDIO, data_dir / HD_AUDIO))
    archive = download_file(base_url + HD_AUDIO, data_dir / HD_AUDIO, sums[HD_AUDIO],
                            timeout_s=timeout_s, then=f" (then unpack it into {data_dir})")
    with tarfile.open(archive) as tf:
        tf.extractall(data_dir, filter="data")
    return data_dir


#: FSDD release pinned for ``--dataset fsdd`` without a local copy: GitHub's zip of tag v1.0.10.
FSDD_RELEASE = "v1.0.10"
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip"
#: SHA-256 of that zip (16,419,872 bytes) as published by an independent audit of the archive.
#: Not recomputed by this project: the machines it was built on have no internet access.
FSDD_SHA256 = "c680098f5d2355ba7cc4bd8b0ca9e0a24c00ebe3b4c552208889a4d28d4fbc2b"
#: SHA-256 of the recordings' manifest (see :func:`recordings_manifest_sha256`), computed by this
#: project from a copy whose ``recordings/`` git tree is that of tag v1.0.10 (3000 .wav files).
FSDD_RECORDINGS_SHA256 = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
FSDD_FOLDER = "fsdd-" + FSDD_RELEASE   # under the cache folder; the .wav files in its recordings/


def recordings_manifest_sha256(folder) -> str:
    """SHA-256 of the lines ``"<sha256 of file>  <file name>\\n"`` of every .wav file in
    ``folder``, sorted by name (the format of ``sha256sum *.wav``)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix == ".wav" and p.is_file())
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def fsdd_cache_folder(cache_dir) -> Path:
    """``<cache_dir>/fsdd-v1.0.10/recordings``: where the downloaded (or hand-placed) WAVs live."""
    return Path(cache_dir) / FSDD_FOLDER / "recordings"


def fetch_fsdd(cache_dir, *, url: str | None = None, sha256: str | None = None,
               recordings_sha256: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Make ``<cache_dir>/fsdd-v1.0.10/recordings`` hold FSDD v1.0.10's 3000 WAVs; return it.

    Present already: returned as is. Otherwise the release zip (``url``, default
    :data:`FSDD_URL`) is downloaded to ``<cache_dir>/fsdd-v1.0.10.zip`` (or taken from there when
    placed by hand), its SHA-256 checked (``sha256``, default ``$DELAYSNN_FSDD_SHA256`` if set,
    else :data:`FSDD_SHA256`), its ``recordings/*.wav`` and top-level files unpacked into a temp
    folder, the WAVs' manifest checked (``recordings_sha256``, default
    :data:`FSDD_RECORDINGS_SHA256`), and the folder moved into place; the zip is then deleted.
    Any failure raises a one-line DataError naming the URL and the folder to fill by hand, and
    leaves no partial folder (a downloaded zip that fails its check is deleted too).
    """
    url = FSDD_URL if url is None else url
    sha256 = (os.environ.get("DELAYSNN_FSDD_SHA256") or FSDD_SHA256) if sha256 is None else sha256
    recordings_sha256 = FSDD_RECORDINGS_SHA256 if recordings_sha256 is None else recordings_sha256
    cache_dir = Path(cache_dir)
    rec = fsdd_cache_folder(cache_dir)
    target = rec.parent
    if rec.is_dir():
        return rec
    if target.exists():
        raise DataError(f"{target} exists but has no recordings/ folder; delete it or put the FSDD "
                        f"v1.0.10 .wav files in {rec}")
    zip_path = cache_dir / f"{FSDD_FOLDER}.zip"
    or_by_hand = f"or put the release's recordings/*.wav files in {rec}, or pass --data-dir FOLDER"
    placed = zip_path.is_file()
    if not placed:   # checked below, like a zip placed by hand
        download_file(url, zip_path, timeout_s=timeout_s,
                      hint=f"download {url} by hand and place it at {zip_path} (checked and "
                           f"unpacked on the next run), {or_by_hand}")
    got = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    if got != sha256.lower():
        source = "placed by hand" if placed else f"downloaded from {url}"
        if not placed:
            zip_path.unlink()
        raise DataError(f"{zip_path} ({source}) has sha256 {got}, expected {sha256} for FSDD "
                        f"{FSDD_RELEASE}; if GitHub now serves another zip of the same release, "
                        f"accept it with DELAYSNN_FSDD_SHA256={got} (the recordings are still "
                        f"checked against their own digest), {or_by_hand}")
    tmp = Path(tempfile.mkdtemp(prefix=FSDD_FOLDER + ".", suffix=".part", dir=cache_dir))
    try:
        _unpack_fsdd(zip_path, tmp)
        got = recordings_manifest_sha256(tmp / "recordings")
        if got != recordings_sha256.lower():
            raise DataError(f"the recordings in {zip_path} are not FSDD {FSDD_RELEASE}'s (manifest "
                            f"sha256 {got}, expected {recordings_sha256}); {or_by_hand}")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    zip_path.unlink()
    return rec


def _unpack_fsdd(zip_path: Path, dest: Path) -> None:
    """``<top>/recordings/*.wav`` -> dest/recordings/, ``<top>/<file>`` -> dest/<file>."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            tops = {m.filename.split("/", 1)[0] for m in members}
            if len(tops) != 1:
                raise DataError(f"{zip_path} is not a GitHub release archive (one top folder); "
                                f"found {sorted(tops)[:3]}")
            (dest / "recordings").mkdir()
            n_wav = 0
            for m in members:
                parts = m.filename.split("/")
                if len(parts) == 3 and parts[1] == "recordings" and parts[2].endswith(".wav"):
                    out, n_wav = dest / "recordings" / parts[2], n_wav + 1
                elif len(parts) == 2 and parts[1] and not parts[1].startswith("."):
                    out = dest / parts[1]
                else:
                    continue
                with zf.open(m) as src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{zip_path} is not a zip archive ({exc}); "
                        "delete it and download it again") from None
    if n_wav == 0:
        raise DataError(f"{zip_path} has no recordings/*.wav files")
