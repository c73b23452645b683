"""Synthetic spoken digits: the ten English digit words ("zero" .. "nine") said by espeak-ng voices,
and optionally by flite voices.

Needs the Debian/Ubuntu package ``espeak-ng`` (``sh tools/ensure_espeak.sh`` installs it as root;
``make test`` runs it), and ``flite`` for option ``flite_voices`` (the same script installs it).
Without them the loader fails at once with one line naming the package.

Voices, drawn from ``voice_seed`` (numpy ``default_rng``): ``voices`` distinct (accent, variant)
pairs out of :data:`ACCENTS` x :data:`VARIANTS` (espeak-ng ``-v accent+variant``), each with a
pitch in :data:`PITCH` (``-p``, 0-99, espeak's default 50) and a speaking rate in :data:`SPEED`
(``-s``, words per minute, default 175). Each voice says every digit ``takes`` times; takes
after the first jitter pitch by up to +-6 and rate by up to +-15 wpm around the voice's own.
Voice ``k`` is the speaker ``tts{k:03d}``.

Option ``flite_voices`` (default 0) adds that many flite voices after them, speakers
``fl{k:03d}``: another synthesiser (flite 2.2's built-in voices :data:`FLITE_VOICES`: a diphone
voice and three statistical parametric ones, male and female), each draw with a mean pitch in
:data:`FLITE_F0` (``--setf int_f0_target_mean``, Hz; rms keeps its own) and a duration stretch
in :data:`FLITE_STRETCH` (``--setf duration_stretch``), drawn from their own stream of
``voice_seed`` (the espeak-ng draws do not change); takes after the first jitter them by
:data:`FLITE_JITTER`. The last ``test_voices`` voices (flite's when there are any) are the test
split, validation is carved from the others by whole voices (strategy "speakers").

Cache: ``<cache>/tts-digits/<key>/`` (key: SHA-256 of the settings and the espeak-ng version, so
another version makes another folder) holds ``{digit}_{speaker}_{take}.wav`` (espeak-ng's
22,050 Hz 16-bit mono; flite's 8 or 16 kHz) and ``manifest.json``: settings, espeak-ng version
(and flite's settings and version, only with flite voices: other folders keep their key), per
voice its engine's name, pitch and rate, per file its SHA-256, and ``digest`` (SHA-256 of the sorted
"name sha256" lines). The folder is written under a temporary name and renamed when complete;
every load checks each file against the manifest. Generation runs one espeak-ng process per
utterance (300 utterances: a few seconds). Front end: the Mel recipe resampled to 8 kHz, as
FSDD, so these voices mix with FSDD (option ``tts_voices`` of fsdd adds them to its training
split).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .audio_features import audio_features
from .dataset import SourceSplit
from .errors import DataError
from .feature_cache import default_cache_dir
from .frontend import MelRecipe

NAME = "tts-digits"
DESCRIPTION = ("the ten digits spoken by espeak-ng voices (accent x variant x pitch x rate from a "
               "seed; generated, cached, checksummed), 10 classes")
OPTIONS: dict = {"voices": 30, "takes": 1, "voice_seed": 0, "test_voices": 6,
                 "flite_voices": 0}
VAL_STRATEGY = "speakers"
USES_N_MELS = True
CLASS_NAMES = [str(d) for d in range(10)]
SAMPLE_RATE_HZ = 8000               # the features' rate (FSDD's), whatever espeak-ng writes
REQUIRES = ("espeak-ng",)           # Debian/Ubuntu packages
GENERATOR_VERSION = 1               # bump when the generation rule changes
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
#: espeak-ng voice variants that sound like people (robots, whispers and effects left out)
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "klatt4", "adam", "Andy", "Annie", "aunty", "belinda",
            "benjamin", "caleb", "david", "ed", "edward", "grandma", "grandpa", "john", "linda",
            "max", "norbert", "paul", "quincy", "rob", "robert", "shelby", "steph", "travis",
            "victor")
PITCH = (20, 80)                    # espeak-ng -p range (inclusive)
SPEED = (120, 210)                  # espeak-ng -s range, words per minute (inclusive)
TAKE_JITTER = (6, 15)               # takes after the first: +- pitch, +- wpm
MANIFEST = "manifest.json"
#: flite 2.2's built-in voices (``flite -lv``; kal16 is kal at 16 kHz, awb_time a clock voice)
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
FLITE_F0 = (80, 240)                # int_f0_target_mean range, Hz (inclusive)
FLITE_STRETCH = (0.8, 1.3)          # duration_stretch range (1 = the voice's own tempo)
FLITE_JITTER = (10, 0.05)           # takes after the first: +- Hz, +- stretch


def _version(tool: str, pattern: str, needed_by: str) -> str:
    """`tool --version`'s version (regex `pattern`'s group 1), or DataError naming the Debian
    package (named as the tool) to install."""
    exe = shutil.which(tool)
    if exe is None:
        raise DataError(f"{needed_by} needs {tool}, which is not installed: install the "
                        f"Debian/Ubuntu package {tool} (as root: sh tools/ensure_espeak.sh)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(pattern, out)
    if m is None:
        raise DataError(f"cannot read the {tool} version from {out.strip()!r}")
    return m.group(1)


def espeak_version() -> str:
    """The installed espeak-ng's version string, or DataError naming the package to install."""
    return _version("espeak-ng", r"text-to-speech:\s*(\S+)", "dataset tts-digits")


def flite_version() -> str:
    """The installed flite's version string, or DataError naming the package to install."""
    return _version("flite", r"version:\s*(\S+)", "tts-digits option flite_voices")


def check_options(voices, takes, voice_seed, test_voices, flite_voices=0) -> None:
    """DataError unless the options are in range."""
    for k, v in (("voices", voices), ("takes", takes), ("voice_seed", voice_seed),
                 ("test_voices", test_voices), ("flite_voices", flite_voices)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise DataError(f"tts-digits option {k} must be a non-negative integer, got {v!r}")
    if not 1 <= voices <= len(ACCENTS) * len(VARIANTS) or takes < 1:
        raise DataError(f"tts-digits needs 1 <= voices <= {len(ACCENTS) * len(VARIANTS)} and "
                        f"takes >= 1, got voices={voices}, takes={takes}")
    if test_voices > voices + flite_voices - 2:
        raise DataError(f"tts-digits test_voices={test_voices} leaves fewer than 2 of "
                        f"{voices + flite_voices} voices for training and validation")


def draw_voices(voices: int, takes: int, voice_seed: int) -> list[dict]:
    """The voices of the module docstring: [{speaker, voice, pitch: [per take], speed: [...]}]."""
    rng = np.random.default_rng(voice_seed)
    pairs = [(a, v) for a in ACCENTS for v in VARIANTS]
    chosen = rng.choice(len(pairs), size=voices, replace=False)
    pitch = rng.integers(PITCH[0], PITCH[1] + 1, size=voices)
    speed = rng.integers(SPEED[0], SPEED[1] + 1, size=voices)
    jp = rng.integers(-TAKE_JITTER[0], TAKE_JITTER[0] + 1, size=(voices, takes))
    js = rng.integers(-TAKE_JITTER[1], TAKE_JITTER[1] + 1, size=(voices, takes))
    jp[:, 0] = js[:, 0] = 0
    out = []
    for k, i in enumerate(chosen):
        accent, variant = pairs[int(i)]
        out.append({"speaker": f"tts{k:03d}", "voice": f"{accent}+{variant}",
                    "pitch": np.clip(pitch[k] + jp[k], 0, 99).astype(int).tolist(),
                    "speed": np.clip(speed[k] + js[k], 80, 450).astype(int).tolist()})
    return out


def draw_flite_voices(voices: int, takes: int, voice_seed: int) -> list[dict]:
    """The flite voices of the module docstring: [{speaker, engine, voice, f0_hz: [per take],
    duration_stretch: [...]}], from their own stream of voice_seed."""
    rng = np.random.default_rng([voice_seed, 1])
    base = rng.integers(0, len(FLITE_VOICES), size=voices)
    f0 = rng.integers(FLITE_F0[0], FLITE_F0[1] + 1, size=voices)
    stretch = rng.uniform(*FLITE_STRETCH, size=voices)
    jf = rng.integers(-FLITE_JITTER[0], FLITE_JITTER[0] + 1, size=(voices, takes))
    js = rng.uniform(-FLITE_JITTER[1], FLITE_JITTER[1], size=(voices, takes))
    jf[:, 0] = 0
    js[:, 0] = 0.0
    return [{"speaker": f"fl{k:03d}", "engine": "flite", "voice": FLITE_VOICES[int(base[k])],
             "f0_hz": (f0[k] + jf[k]).astype(int).tolist(),
             "duration_stretch": np.round(stretch[k] + js[k], 3).tolist()}
            for k in range(voices)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(files: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{n} {h}\n" for n, h in sorted(files.items()))
                          .encode()).hexdigest()


def _settings(voices: int, takes: int, voice_seed: int, version: str,
              flite_voices: int = 0) -> dict:
    out = {"generator": GENERATOR_VERSION, "espeak_ng": version, "voices": voices,
           "takes": takes, "voice_seed": voice_seed, "words": list(WORDS),
           "accents": list(ACCENTS), "variants": list(VARIANTS), "pitch": list(PITCH),
           "speed": list(SPEED), "take_jitter": list(TAKE_JITTER)}
    if flite_voices:  # only then: a corpus without flite keeps its key (its cache folder)
        out["flite"] = {"version": flite_version(), "voices": flite_voices,
                        "base": list(FLITE_VOICES), "f0_hz": list(FLITE_F0),
                        "duration_stretch": list(FLITE_STRETCH), "jitter": list(FLITE_JITTER)}
    return out


def _listed(exe: str, which: str, column: int) -> set[str]:
    """One column of ``espeak-ng --voices=WHICH`` (espeak-ng falls back silently on unknown
    voices, so they are checked against these lists first)."""
    out = subprocess.run([exe, f"--voices={which}"], capture_output=True, text=True,
                         check=False).stdout
    return {line.split()[column].split("/", 1)[-1] for line in out.splitlines()[1:]
            if len(line.split()) > column}


def _say(cmd: list[str], path: Path, what: str) -> str:
    """Run one synthesiser command that writes `path`; its SHA-256, or DataError."""
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0 or not path.is_file():
        raise DataError(f"{what} failed: {(r.stderr or r.stdout).strip()[:200]}")
    return _sha256(path)


def generate(folder: Path, voices: int, takes: int, voice_seed: int,
             flite_voices: int = 0) -> dict:
    """Write the utterances and manifest.json into the new folder ``folder``; the manifest."""
    version = espeak_version()
    exe = shutil.which("espeak-ng")
    assert exe is not None
    missing = sorted(set(VARIANTS) - _listed(exe, "variant", 4)) + sorted(
        set(ACCENTS) - _listed(exe, "en", 1))
    if missing:
        raise DataError(f"espeak-ng {version} lacks the voice(s) {missing}; install Debian's "
                        f"espeak-ng package (its espeak-ng-data has them)")
    table = draw_voices(voices, takes, voice_seed)
    folder.mkdir(parents=True)
    files = {}
    for v in table:
        for digit, word in enumerate(WORDS):
            for take in range(takes):
                name = f"{digit}_{v['speaker']}_{take}.wav"
                cmd = [exe, "-v", v["voice"], "-p", str(v["pitch"][take]),
                       "-s", str(v["speed"][take]), "-w", str(folder / name), word]
                files[name] = _say(cmd, folder / name,
                                   f"espeak-ng on {' '.join(cmd[1:-3])} {word!r}")
    if flite_voices:
        fl = shutil.which("flite")
        assert fl is not None  # flite_version (in _settings below) names the package
        flite = draw_flite_voices(flite_voices, takes, voice_seed)
        for v in flite:
            for digit, word in enumerate(WORDS):
                for take in range(takes):
                    name = f"{digit}_{v['speaker']}_{take}.wav"
                    cmd = [fl, "-voice", v["voice"], "-t", word, "-o", str(folder / name),
                           "--setf", f"int_f0_target_mean={v['f0_hz'][take]}",
                           "--setf", f"duration_stretch={v['duration_stretch'][take]}"]
                    files[name] = _say(cmd, folder / name,
                                       f"flite on {v['voice']} {word!r}")
        table = table + flite
    manifest = {"settings": _settings(voices, takes, voice_seed, version, flite_voices),
                "voices": table, "files": files, "digest": _digest(files)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def corpus(voices: int = 30, takes: int = 1, voice_seed: int = 0, cache_dir=None,
           flite_voices: int = 0) -> tuple[Path, dict]:
    """(folder, manifest) of the generated utterances: from the cache after checking every
    file's SHA-256, else generated there (temporary folder, renamed when complete)."""
    version = espeak_version()
    root = (default_cache_dir() if cache_dir is None else Path(cache_dir)) / NAME
    settings = _settings(voices, takes, voice_seed, version, flite_voices)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder = root / key
    if not (folder / MANIFEST).is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            generate(tmp / "voices", voices, takes, voice_seed, flite_voices)
            try:
                os.replace(tmp / "voices", folder)
            except OSError:
                if not (folder / MANIFEST).is_file():   # not a concurrent writer's result
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, sha in manifest["files"].items():
        path = folder / name
        if not path.is_file() or _sha256(path) != sha:
            raise DataError(f"tts-digits cache file {path} is missing or does not match its "
                            f"manifest checksum; delete {folder} to generate it again")
    return folder, manifest


def list_files(folder: Path, manifest: dict, split: str | None, test_voices: int
               ) -> tuple[list[Path], np.ndarray, list[dict]]:
    """(files, labels, meta) sorted by name: the test voices (the last ``test_voices``), the
    others ("train"), or every voice (split None)."""
    table = {v["speaker"]: v for v in manifest["voices"]}
    test = {v["speaker"] for v in manifest["voices"][len(table) - test_voices:]} \
        if test_voices else set()
    files, labels, meta = [], [], []
    for name in sorted(manifest["files"]):
        digit, speaker, take = name[:-4].split("_")
        if split is not None and (speaker in test) != (split == "test"):
            continue
        v = table[speaker]
        files.append(folder / name)
        labels.append(int(digit))
        # per take: espeak-ng's pitch (0-99) and speed (wpm), or flite's f0_hz and stretch
        per_take = {k: val[int(take)] for k, val in v.items() if isinstance(val, list)}
        meta.append({"speaker": speaker, "file": name, "take": int(take), "voice": v["voice"],
                     **({"engine": v["engine"]} if "engine" in v else {}), **per_take})
    return files, np.array(labels, dtype=np.int64), meta


def mel_recipe(n_mels: int, time_steps: int, **options) -> MelRecipe:
    """The front end of this source: the default Mel recipe at 8 kHz (FSDD's)."""
    return MelRecipe(n_mels=n_mels, n_frames=time_steps, resample_hz=SAMPLE_RATE_HZ)


def features_of(voices: int, takes: int, voice_seed: int, frontend: MelRecipe, cache_dir,
                split: str | None = None, test_voices: int = 0,
                flite_voices: int = 0) -> SourceSplit:
    """Features of the generated utterances (one split, or all with split None)."""
    folder, manifest = corpus(voices, takes, voice_seed, cache_dir, flite_voices)
    files, y, meta = list_files(folder, manifest, split, test_voices)
    if not files:
        raise DataError(f"tts-digits has no {split} utterances (test_voices={test_voices})")
    stem = f"tts-digits-{split or 'all'}" + (f"-flite{flite_voices}" if flite_voices else "")
    x = audio_features(files, frontend, stem=stem, cache_dir=cache_dir)
    return SourceSplit(x, y, meta, list(CLASS_NAMES))


def load_split(data_dir, split: str, *, frontend: MelRecipe, cache_dir, voices: int = 30,
               takes: int = 1, voice_seed: int = 0, test_voices: int = 6,
               flite_voices: int = 0) -> SourceSplit:
    if data_dir is not None:
        raise DataError("dataset tts-digits is generated (in the cache folder); pass no data_dir")
    check_options(voices, takes, voice_seed, test_voices, flite_voices)
    if flite_voices:
        flite_version()     # fail now, naming the package, when it is missing
    return features_of(int(voices), int(takes), int(voice_seed), frontend, cache_dir, split,
                       int(test_voices), int(flite_voices))
