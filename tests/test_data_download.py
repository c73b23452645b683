"""Downloads: checksum verification (offline, file:// URLs) and a fast, clear failure offline;
FSDD by name (the pinned release into the cache folder, the CI copy first)."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import time
import urllib.request
import zipfile

import pytest

from helpers.data_fakes import fsdd_release_zip
from trainer.data import DataError, load_dataset
from trainer.data import download as dl
from trainer.data import fsdd as fsdd_mod


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


# --- FSDD by name: the pinned release, downloaded into the cache folder when no copy exists ---

def _fake_release(tmp_path):
    """A small FSDD-like release zip on a file:// 'host', with its archive and manifest SHA-256."""
    host = tmp_path / "host"
    host.mkdir()
    zpath = fsdd_release_zip(host / "v1.0.10.zip")
    with zipfile.ZipFile(zpath) as zf:
        wavs = sorted((n.rsplit("/", 1)[1], zf.read(n)) for n in zf.namelist() if n.endswith(".wav"))
    manifest = "".join(f"{hashlib.sha256(b).hexdigest()}  {name}\n" for name, b in wavs)
    return zpath, hashlib.sha256(zpath.read_bytes()).hexdigest(), hashlib.sha256(manifest.encode()).hexdigest()


def test_fsdd_pins_a_tagged_release_and_its_checksums():
    assert dl.FSDD_URL == ("https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/"
                           "v1.0.10.zip")
    for h in (dl.FSDD_SHA256, dl.FSDD_RECORDINGS_SHA256):
        assert len(h) == 64 and int(h, 16) >= 0


def test_pinned_recordings_manifest_is_that_of_the_real_fsdd(fsdd_dir):
    """The CI copy's recordings are v1.0.10's: the pinned manifest digest is theirs."""
    assert dl.recordings_manifest_sha256(fsdd_dir) == dl.FSDD_RECORDINGS_SHA256


def test_fetch_fsdd_verifies_unpacks_and_reuses(tmp_path):
    zpath, sha, manifest = _fake_release(tmp_path)
    cache = tmp_path / "cache"
    rec = dl.fetch_fsdd(cache, url=zpath.as_uri(), sha256=sha, recordings_sha256=manifest)
    assert rec == cache / "fsdd-v1.0.10" / "recordings"
    assert len(list(rec.glob("*.wav"))) == 16
    assert sorted(p.name for p in rec.parent.iterdir()) == ["README.md", "recordings"]
    assert sorted(p.name for p in cache.iterdir()) == ["fsdd-v1.0.10"]   # zip and temp folder gone
    # from then on no download: an unreachable URL is never contacted
    assert dl.fetch_fsdd(cache, url="http://127.0.0.1:9/x.zip", sha256=sha) == rec


def test_fetch_fsdd_refuses_a_wrong_archive_or_wrong_recordings(tmp_path):
    zpath, sha, manifest = _fake_release(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"fsdd-v1.0.10.zip \(downloaded from file:.*\) has sha256 "
                                        + sha + r", expected 0{64} for FSDD v1.0.10; .*"
                                        r"DELAYSNN_FSDD_SHA256=" + sha + r" \(the recordings are still "
                                        r"checked .*recordings/\*.wav files in .*--data-dir"):
        dl.fetch_fsdd(cache, url=zpath.as_uri(), sha256="0" * 64, recordings_sha256=manifest)
    assert list(cache.iterdir()) == []
    with pytest.raises(DataError, match=r"recordings in .*fsdd-v1.0.10.zip are not FSDD v1.0.10's"):
        dl.fetch_fsdd(cache, url=zpath.as_uri(), sha256=sha, recordings_sha256="1" * 64)
    assert not (cache / "fsdd-v1.0.10").exists()
    assert [p.name for p in cache.iterdir()] == ["fsdd-v1.0.10.zip"]     # verified zip, no partial folder


def test_fetch_fsdd_takes_a_zip_placed_by_hand(tmp_path):
    zpath, sha, manifest = _fake_release(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fsdd-v1.0.10.zip").write_bytes(b"PK not it")
    with pytest.raises(DataError, match=r"fsdd-v1.0.10.zip \(placed by hand\) has sha256 .*, expected " + sha):
        dl.fetch_fsdd(cache, url="http://127.0.0.1:9/x.zip", sha256=sha, recordings_sha256=manifest)
    assert (cache / "fsdd-v1.0.10.zip").read_bytes() == b"PK not it"     # the user's file is kept
    (cache / "fsdd-v1.0.10.zip").write_bytes(zpath.read_bytes())
    rec = dl.fetch_fsdd(cache, url="http://127.0.0.1:9/x.zip", sha256=sha, recordings_sha256=manifest)
    assert len(list(rec.glob("*.wav"))) == 16


def test_fsdd_archive_checksum_can_be_overridden_but_recordings_are_still_checked(monkeypatch, tmp_path):
    """$DELAYSNN_FSDD_SHA256 replaces the pinned archive checksum (for a re-generated zip of the
    same release); the recordings' own digest still has to match."""
    zpath, sha, manifest = _fake_release(tmp_path)
    monkeypatch.setenv("DELAYSNN_FSDD_SHA256", sha)
    with pytest.raises(DataError, match="are not FSDD v1.0.10's"):
        dl.fetch_fsdd(tmp_path / "a", url=zpath.as_uri(), recordings_sha256="2" * 64)
    rec = dl.fetch_fsdd(tmp_path / "b", url=zpath.as_uri(), recordings_sha256=manifest)
    assert len(list(rec.glob("*.wav"))) == 16
    monkeypatch.delenv("DELAYSNN_FSDD_SHA256")
    with pytest.raises(DataError, match="expected " + dl.FSDD_SHA256):     # the pinned value again
        dl.fetch_fsdd(tmp_path / "c", url=zpath.as_uri(), recordings_sha256=manifest)


def _no_ci_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(fsdd_mod, "default_data_dir", lambda: tmp_path / "no-shared-copy")


def test_fsdd_by_name_downloads_into_the_cache_and_trains_from_it(monkeypatch, tmp_path):
    zpath, sha, manifest = _fake_release(tmp_path)
    _no_ci_copy(monkeypatch, tmp_path)
    monkeypatch.setattr(dl, "FSDD_URL", zpath.as_uri())
    monkeypatch.setattr(dl, "FSDD_SHA256", sha)
    monkeypatch.setattr(dl, "FSDD_RECORDINGS_SHA256", manifest)
    cache = tmp_path / "cache"
    te = load_dataset("fsdd", "test", cache_dir=cache)
    assert len(te) == 8 and te.recipe["data_dir"] is None          # takes 0, 1 of 2 speakers x 2 digits
    assert {m["file"] for m in te.meta} <= {p.name for p in (cache / "fsdd-v1.0.10" / "recordings").iterdir()}
    monkeypatch.setattr(dl, "FSDD_URL", "http://127.0.0.1:9/gone.zip")   # offline from now on
    assert len(load_dataset("fsdd", "train", cache_dir=cache, val_fraction=0.0)) == 8


def test_fsdd_ci_copy_comes_first(monkeypatch, tmp_path):
    zpath, _, _ = _fake_release(tmp_path)
    shared = tmp_path / "shared" / "recordings"
    shared.mkdir(parents=True)
    with zipfile.ZipFile(zpath) as zf:
        for n in zf.namelist():
            if n.endswith(".wav") and "/0_" in n:
                (shared / n.rsplit("/", 1)[1]).write_bytes(zf.read(n))
    monkeypatch.setattr(fsdd_mod, "default_data_dir", lambda: shared)
    monkeypatch.setattr(dl, "FSDD_URL", "http://127.0.0.1:9/never.zip")
    te = load_dataset("fsdd", "test", cache_dir=tmp_path / "cache")
    assert len(te) == 4 and set(te.y.tolist()) == {0}
    assert not (tmp_path / "cache" / "fsdd-v1.0.10").exists()


def test_fsdd_offline_fails_fast_naming_the_url_and_the_folder(monkeypatch, tmp_path):
    _no_ci_copy(monkeypatch, tmp_path)
    monkeypatch.setattr(dl, "FSDD_URL", "http://127.0.0.1:9/v1.0.10.zip")
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_dataset("fsdd", cache_dir=cache)
    assert time.perf_counter() - t0 < 30       # generous bound; a refused connection is immediate
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("cannot download fsdd-v1.0.10.zip from http://127.0.0.1:9/v1.0.10.zip (")
    assert f"put the release's recordings/*.wav files in {cache / 'fsdd-v1.0.10' / 'recordings'}" in msg
    assert "--data-dir" in msg
    assert list(cache.iterdir()) == []


def test_trainer_cli_offline_prints_one_line(monkeypatch, tmp_path, capsys):
    """`python -m trainer train --dataset fsdd ...` with no copy and no network: exit code 2 and
    one line naming the URL and the folder; no run folder is created."""
    import trainer.__main__ as cli
    _no_ci_copy(monkeypatch, tmp_path)
    monkeypatch.setattr(dl, "FSDD_URL", "http://127.0.0.1:9/v1.0.10.zip")
    monkeypatch.setenv("DELAYSNN_CACHE", str(tmp_path / "cache"))
    rc = cli.main(["train", "--dataset", "fsdd", "--method", "dcls", "--epochs", "1",
                   "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith("error: cannot download fsdd-v1.0.10.zip from http://127.0.0.1:9/v1.0.10.zip")
    assert str(tmp_path / "cache" / "fsdd-v1.0.10" / "recordings") in err
    assert not (tmp_path / "run").exists()
