"""Build the patched wheels of lava-nc 0.10.0, lava-dl 0.6.0 and NeuroBench 2.3.0 that this
project installs (as `<version>+delaysnn1`), with code fixes for Python 3.11 and corrected
metadata, so that `pip check` is clean and nothing is edited inside site-packages.

For each release: `pip download --no-deps` the upstream wheel, `wheel unpack` it, apply the
source fixes below, rewrite METADATA (Requires-Python, conflicting Requires-Dist pins, each change
with its reason in SPECS), rename the .dist-info folder to the local version, and `wheel pack`
it (which rewrites RECORD with the new hashes) into the wheel folder. A wheel already in that
folder is reused (bump LOCAL when a fix changes, so stale builds are not). pyproject.toml pins the
local versions; `make` installs them with `pip install --find-links <wheel folder>`.

Source fixes (see the reference notes on Lava):
1. lava/magma/compiler/var_model.py: dataclass fields `x: ByteEncoder = ByteEncoder()` are
   mutable defaults, which Python 3.11 rejects; they become `field(default_factory=ByteEncoder)`.
2. lava/lib/dl/slayer/__init__.py imports `object_detection`, which needs torchvision; the import
   is made optional (netx and the rest of slayer do not use it).
3. lava/magma/runtime/message_infrastructure/multiprocessing.py calls
   `mp.set_start_method('fork')` at import, which raises "context has already been set" when
   anything in the process used multiprocessing first (e.g. an earlier test); it now sets the
   start method only when none is set yet (Linux's default is fork anyway).
Both Lava wheels also ship their own test suites as a top-level `tests` package (into
site-packages, where the two overwrite each other); the patched wheels leave it out.

Usage: python tools/patched_wheels.py [--wheels DIR]   build (or reuse) the wheels in DIR
       python tools/patched_wheels.py --check          are the patched builds the ones installed?
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

LOCAL = "delaysnn1"  # local version label; bump it whenever a fix below changes
MARKER = "# patched by delaysnn tools/patched_wheels.py"
PY_RANGE = ">=3.10,<3.12"  # the fixes make them import and run on 3.11 (tests/test_install.py)


def default_wheel_dir() -> Path:
    """`$DELAYSNN_CACHE/wheels`, else `~/.cache/delaysnn/wheels`: the project's cache folder
    (as trainer/data/feature_cache.py), outside the clone."""
    base = os.environ.get("DELAYSNN_CACHE") or str(Path.home() / ".cache" / "delaysnn")
    return Path(base) / "wheels"


# ---- source fixes: each returns the new text, and raises if its target is not found ----------

def fix_var_model(src: str) -> str:
    new, n = re.subn(r"(\w+): ByteEncoder = ByteEncoder\(\)",
                     r"\1: ByteEncoder = field(default_factory=ByteEncoder)", src)
    old_imp = "from dataclasses import dataclass, InitVar\n"
    if n == 0 or old_imp not in new:
        raise ValueError("`x: ByteEncoder = ByteEncoder()` fields or the dataclasses import "
                         "not found")
    return new.replace(old_imp, "from dataclasses import dataclass, InitVar, field  "
                       + MARKER + "\n", 1)


def fix_slayer_init(src: str) -> str:
    old = "from . import object_detection as obd\n"
    if old not in src:
        raise ValueError(f"line {old.strip()!r} not found")
    return src.replace(old, "try:  " + MARKER + " (needs torchvision)\n"
                            "    from . import object_detection as obd\n"
                            "except ImportError:\n"
                            "    obd = None\n", 1)


def fix_start_method(src: str) -> str:
    old = "    mp.set_start_method('fork')\n"
    if old not in src:
        raise ValueError(f"line {old.strip()!r} not found")
    return src.replace(old, "    if mp.get_start_method(allow_none=True) is None:  " + MARKER + "\n"
                            "        mp.set_start_method('fork')\n", 1)


@dataclass(frozen=True)
class Spec:
    """One upstream release and what changes in its patched build."""
    name: str
    version: str
    requires_python: str | None = None  # new Requires-Python (None: unchanged)
    # Requires-Dist rewrites, by requirement name: the new value, or None to drop it. Every
    # name listed must occur upstream (else the release is not the one these fixes were made for).
    requires: dict[str, str | None] = field(default_factory=dict)
    extras: tuple[str, ...] = ()  # new Provides-Extra names used by the rewritten requirements
    fixes: tuple[tuple[str, Callable[[str], str]], ...] = ()  # (path in the wheel, fix)
    drop: tuple[str, ...] = ()  # top-level folders left out of the wheel

    @property
    def local_version(self) -> str:
        return f"{self.version}+{LOCAL}"

    @property
    def wheel_name(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.local_version}-py3-none-any.whl"


SPECS = (
    Spec("lava-nc", "0.10.0", requires_python=PY_RANGE, drop=("tests",),
         fixes=(("lava/magma/compiler/var_model.py", fix_var_model),
                ("lava/magma/runtime/message_infrastructure/multiprocessing.py",
                 fix_start_method))),
    Spec("lava-dl", "0.6.0", requires_python=PY_RANGE, drop=("tests",),
         extras=("object-detection", "cuda"),
         fixes=(("lava/lib/dl/slayer/__init__.py", fix_slayer_init),),
         requires={
             # the Python 3.11 fixes of lava-nc are needed too
             "lava-nc": "lava-nc==0.10.0+" + LOCAL,
             # <2.4 is the release's test matrix, not an API limit: this project runs netx and
             # slayer on torch 2.13 (tests/test_install.py, tests/test_export_netx.py)
             "torch": "torch>=2.3.1",
             # only slayer.object_detection imports torchvision and PIL (fix 2 makes it optional);
             # moved to an extra with the upstream pins, untested here
             "torchvision": 'torchvision<0.19.0,>=0.18.0; extra == "object-detection"',
             "pillow": 'pillow<11.0,>=10.0.1; extra == "object-detection"',
             # only used by torch.utils.cpp_extension to JIT-compile slayer's CUDA kernels
             "ninja": 'ninja<2.0.0.0,>=1.10.2.3; extra == "cuda"',
             # used only by lava-dl's own tests, which the patched wheel leaves out
             "pytest": None,
             "unittest2": None,
         }),
    Spec("neurobench", "2.3.0", extras=("speech",),
         requires={
             # imported only by its speech datasets and preprocessors (not used here); torchaudio
             # has no build matching torch 2.13
             "torchaudio": 'torchaudio>=2.0.2; extra == "speech"',
             # not imported anywhere in neurobench 2.3.0
             "tonic": None,
             "numba": None,
             "llvmlite": None,
         }),
)


def _req_name(value: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", value)
    if not m:
        raise ValueError(f"cannot parse requirement {value!r}")
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def rewrite_metadata(text: str, spec: Spec) -> str:
    """METADATA of the upstream wheel -> METADATA of the patched build (headers only; the
    description body after the first blank line is kept as is)."""
    head, sep, body = text.partition("\n\n")
    out, seen = [], set()
    for line in head.split("\n"):
        key, _, value = line.partition(": ")
        if key == "Version":
            if value != spec.version:
                raise ValueError(f"{spec.name}: METADATA says version {value}, expected "
                                 f"{spec.version}")
            line = f"Version: {spec.local_version}"
        elif key == "Requires-Python" and spec.requires_python:
            line = f"Requires-Python: {spec.requires_python}"
        elif key == "Requires-Dist" and _req_name(value) in spec.requires:
            seen.add(_req_name(value))
            new = spec.requires[_req_name(value)]
            if new is None:
                continue
            line = f"Requires-Dist: {new}"
        out.append(line)
    missing = set(spec.requires) - seen
    if missing:
        raise ValueError(f"{spec.name}: METADATA has no Requires-Dist for {sorted(missing)}")
    out += [f"Provides-Extra: {e}" for e in spec.extras]
    return "\n".join(out) + sep + body


def _wheel_cli(*args: str) -> None:
    try:
        subprocess.run([sys.executable, "-m", "wheel", *args], check=True, capture_output=True,
                       text=True)
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"patched_wheels: `wheel {' '.join(args)}` failed: {e.stderr.strip()}")


def build(spec: Spec, wheel_dir: Path) -> Path:
    """Download, patch and repack one release into wheel_dir; return the wheel's path."""
    with tempfile.TemporaryDirectory(prefix="delaysnn-wheel-") as tmp:
        tmp = Path(tmp)
        if subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--ignore-requires-python", "--dest", str(tmp / "dl"),
                           f"{spec.name}=={spec.version}"]).returncode != 0:
            raise SystemExit(f"patched_wheels: could not download {spec.name}=={spec.version} "
                             "(pip's message above; a network or index problem?)")
        (upstream,) = (tmp / "dl").glob("*.whl")
        _wheel_cli("unpack", "--dest", str(tmp / "src"), str(upstream))
        (root,) = (tmp / "src").iterdir()
        for rel, fix in spec.fixes:
            path = root / rel
            try:
                path.write_text(fix(path.read_text()))
            except (OSError, ValueError) as e:
                raise SystemExit(f"patched_wheels: {spec.name} {spec.version}: {rel}: {e}")
        for top in spec.drop:
            shutil.rmtree(root / top)
        (info,) = root.glob("*.dist-info")
        meta = info / "METADATA"
        try:
            meta.write_text(rewrite_metadata(meta.read_text(), spec))
        except ValueError as e:
            raise SystemExit(f"patched_wheels: {e}")
        (info / "RECORD").unlink()  # `wheel pack` writes a new one
        info.rename(info.with_name(f"{spec.name.replace('-', '_')}-{spec.local_version}"
                                   ".dist-info"))
        (tmp / "out").mkdir()
        _wheel_cli("pack", "--dest-dir", str(tmp / "out"), str(root))
        (built,) = (tmp / "out").glob("*.whl")
        if built.name != spec.wheel_name:
            raise SystemExit(f"patched_wheels: built {built.name}, expected {spec.wheel_name}")
        wheel_dir.mkdir(parents=True, exist_ok=True)
        # copy beside the target, then rename: a wheel in wheel_dir is always complete
        part = wheel_dir / (spec.wheel_name + ".part")
        shutil.copyfile(built, part)
        os.replace(part, wheel_dir / spec.wheel_name)
    return wheel_dir / spec.wheel_name


def installed_problems() -> list[str]:
    """What differs from the patched builds in the running interpreter (empty: all installed)."""
    problems = []
    for spec in SPECS:
        try:
            dist = md.distribution(spec.name)
        except md.PackageNotFoundError:
            problems.append(f"{spec.name} is not installed")
            continue
        if dist.version != spec.local_version:
            problems.append(f"{spec.name} {dist.version} is installed, not {spec.local_version}")
            continue
        for rel, _ in spec.fixes:
            if MARKER not in Path(dist.locate_file(rel)).read_text():
                problems.append(f"{spec.name}: {rel} lacks the fix")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, default=default_wheel_dir(),
                    help="folder for the patched wheels (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="only check that the patched builds are installed (exit 1 if not)")
    args = ap.parse_args(argv)
    if args.check:
        problems = installed_problems()
        for p in problems:
            print("patched_wheels: " + p + " (`make test` installs them)")
        if not problems:
            print("patched_wheels: " + ", ".join(f"{s.name} {s.local_version}" for s in SPECS)
                  + " installed")
        return 1 if problems else 0
    for spec in SPECS:
        target = args.wheels / spec.wheel_name
        if target.is_file():
            print(f"patched_wheels: {spec.wheel_name} already built")
            continue
        print(f"patched_wheels: building {spec.wheel_name} (download, patch, repack)", flush=True)
        build(spec, args.wheels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
