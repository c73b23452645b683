"""Downloading SHD and the Heidelberg Digits audio, with checksum verification.

The files come from the Zenke lab (``https://zenkelab.org/datasets/``). Each request has a
short socket timeout (default 10 s): on a machine that cannot reach the host the call fails
within seconds with a DataError naming the file to fetch by hand and where to put it. Files are
written to a temp file in the target folder and moved into place only after their MD5 matched.
"""
from __future__ import annotations

import hashlib
import os
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


def download_file(url: str, dest: Path, md5: str | None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                  then: str = "") -> Path:
    """Fetch ``url`` to ``dest`` (atomically); check its MD5 when given. Returns ``dest``.

    Any network failure or timeout (``timeout_s`` seconds per socket operation) raises a
    DataError naming the file and where to place it; a checksum mismatch raises a DataError and
    leaves no file behind. ``then``: text appended to the hint (e.g. how to unpack).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hint = _hand_hint(dest.name, url, dest, then)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    digest = hashlib.md5()
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, os.fdopen(fd, "wb") as out:
                fd = None
                while chunk := resp.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, socket.timeout, TimeoutError, OSError) as exc:
            raise DataError(f"cannot download {dest.name} from {url} ({exc}); {hint}") from exc
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise DataError(f"checksum mismatch for {dest.name} from {url}: md5 {digest.hexdigest()}, "
                            f"expected {md5}; {hint}")
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


def fetch_hd_audio(data_dir, *, base_url: str = BASE_URL, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
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
    archive = download_file(base_url + HD_AUDIO, data_dir / HD_AUDIO, sums[HD_AUDIO], timeout_s=timeout_s,
                            then=f" (then unpack it into {data_dir})")
    with tarfile.open(archive) as tf:
        tf.extractall(data_dir, filter="data")
    return data_dir
