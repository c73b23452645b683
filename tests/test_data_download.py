"""Downloads: checksum verification (offline, file:// URLs) and a fast, clear failure offline."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import time
import urllib.request

import pytest

from trainer.data import DataError
from trainer.data import download as dl


def test_download_verifies_md5(tmp_path):
    src = tmp_path / "src" / "blob.bin"
    src.parent.mkdir()
    src.write_bytes(b"spikes" * 1000)
    good = hashlib.md5(src.read_bytes()).hexdigest()
    out = dl.download_file(src.as_uri(), tmp_path / "dst" / "blob.bin", good)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match=r"checksum mismatch for other.bin .* expected 0{32}; download .* by hand "
                                        r"and place other.bin at"):
        dl.download_file(src.as_uri(), tmp_path / "dst" / "other.bin", "0" * 32)
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["blob.bin"]   # no partial files


def test_unreachable_host_fails_fast_naming_the_file(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"cannot download shd_train.h5.zip from http://127.0.0.1:9/.*"
                                        r"download .* by hand and place shd_train.h5.zip at .*then unzip it"):
        dl.fetch_shd(tmp_path, "train", base_url="http://127.0.0.1:9/", timeout_s=2.0)
    assert time.perf_counter() - t0 < 30       # generous bound; a refused connection is immediate
    assert list(tmp_path.iterdir()) == []


def test_socket_timeout_is_reported(tmp_path, monkeypatch):
    seen = {}

    def slow(url, timeout):
        seen["timeout"] = timeout
        raise socket.timeout("timed out")
    monkeypatch.setattr(urllib.request, "urlopen", slow)
    with pytest.raises(DataError, match=r"cannot download md5sums.txt .*timed out.*place md5sums.txt at"):
        dl.fetch_hd_audio(tmp_path / "hd")
    assert seen["timeout"] == dl.DEFAULT_TIMEOUT_S <= 10


def test_fetch_hd_audio_checks_against_md5sums_and_unpacks(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in [("train_filenames.txt", b"a.flac\n"), ("audio/a.flac", b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (host / "hd_audio.tar.gz").write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    (host / "md5sums.txt").write_text(f"{'1' * 32}  shd_train.h5.zip\n{md5}  hd_audio.tar.gz\n")
    out = dl.fetch_hd_audio(tmp_path / "hd", base_url=host.as_uri() + "/")
    assert (out / "train_filenames.txt").read_text() == "a.flac\n" and (out / "audio" / "a.flac").is_file()
    # a tampered archive is refused
    (host / "md5sums.txt").write_text(f"{'2' * 32}  hd_audio.tar.gz\n")
    with pytest.raises(DataError, match=r"checksum mismatch for hd_audio.tar.gz"):
        dl.fetch_hd_audio(tmp_path / "hd2", base_url=host.as_uri() + "/")


def test_fetch_shd_refuses_wrong_archive(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "shd_test.h5.zip").write_bytes(b"PK not the real archive")
    with pytest.raises(DataError, match=r"checksum mismatch for shd_test.h5.zip .* expected "
                                        + dl.SHD_MD5["shd_test.h5.zip"]):
        dl.fetch_shd(tmp_path / "data", "test", base_url=host.as_uri() + "/")
    assert [p.name for p in (tmp_path / "data").iterdir()] == []
