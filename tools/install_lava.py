"""Install lava-nc 0.10.0 and lava-dl 0.6.0 into the running interpreter and make them import
on Python 3.11.

Both wheels declare Python <3.11 and pin torch 2.3, so they are installed with --no-deps
(their real runtime deps are in pyproject.toml). Two source fixes are then applied, idempotently
(see ../shared/reference/lava.md):

1. lava/magma/compiler/var_model.py: dataclass fields `x: ByteEncoder = ByteEncoder()` are
   mutable defaults, which Python 3.11 rejects; they become `field(default_factory=ByteEncoder)`.
2. lava/lib/dl/slayer/__init__.py imports `object_detection`, which needs torchvision; the import
   is made optional (netx and the rest of slayer do not use it).
3. lava/magma/runtime/message_infrastructure/multiprocessing.py calls
   `mp.set_start_method('fork')` at import, which raises "context has already been set" when
   anything in the process used multiprocessing first (e.g. an earlier test); it now sets the
   start method only when none is set yet (Linux's default is fork anyway).

NeuroBench 2.3.0 (and snntorch, which it imports) are installed the same way, --no-deps: it
declares torchaudio and tonic, which have no build matching torch 2.13; the parts this project
uses (SynapticOperations, Benchmark, TorchModel) import without them.

Usage: python tools/install_lava.py [--check]   (--check: patch state only, exit 1 if unpatched)
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LAVA_PINS = ["lava-nc==0.10.0", "lava-dl==0.6.0"]
NO_DEPS_PINS = LAVA_PINS + ["neurobench==2.3.0", "snntorch==1.0.0"]
MARKER = "# patched by delaysnn tools/install_lava.py"


def _site_file(rel: str) -> Path:
    spec = importlib.util.find_spec("lava")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("lava is not installed; run without --check first")
    return Path(list(spec.submodule_search_locations)[0]) / rel


def _write_atomic(path: Path, text: str) -> None:
    # Replace the file (new inode): a hard-linked cache copy (uv) is left untouched.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def patch_var_model(path: Path) -> bool:
    """Return True if the file was changed."""
    src = path.read_text()
    new = re.sub(r"(\w+): ByteEncoder = ByteEncoder\(\)",
                 r"\1: ByteEncoder = field(default_factory=ByteEncoder)", src)
    if "InitVar, field" not in new:
        new = new.replace("from dataclasses import dataclass, InitVar\n",
                          "from dataclasses import dataclass, InitVar, field  " + MARKER + "\n", 1)
    if new != src:
        _write_atomic(path, new)
        return True
    return False


def patch_slayer_init(path: Path) -> bool:
    src = path.read_text()
    old = "from . import object_detection as obd\n"
    new_line = ("try:  " + MARKER + " (needs torchvision)\n"
                "    from . import object_detection as obd\n"
                "except ImportError:\n"
                "    obd = None\n")
    if old in src and new_line not in src:
        _write_atomic(path, src.replace(old, new_line, 1))
        return True
    return False


def patch_start_method(path: Path) -> bool:
    src = path.read_text()
    old = "    mp.set_start_method('fork')\n"
    new_line = ("    if mp.get_start_method(allow_none=True) is None:  " + MARKER + "\n"
                "        mp.set_start_method('fork')\n")
    if old in src and new_line not in src:
        _write_atomic(path, src.replace(old, new_line, 1))
        return True
    return False


MP_FILE = "magma/runtime/message_infrastructure/multiprocessing.py"


def is_patched() -> bool:
    vm = _site_file("magma/compiler/var_model.py").read_text()
    sl = _site_file("lib/dl/slayer/__init__.py").read_text()
    mp = _site_file(MP_FILE).read_text()
    return "ByteEncoder = ByteEncoder()" not in vm and MARKER in sl and MARKER in mp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether the fixes are in place")
    args = ap.parse_args(argv)
    if args.check:
        ok = is_patched()
        print("lava patched for Python 3.11" if ok else "lava NOT patched: run tools/install_lava.py")
        return 0 if ok else 1
    if any(importlib.util.find_spec(m) is None
           for m in ("lava", "lava.lib.dl", "neurobench", "snntorch")):
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                               "--ignore-requires-python", *NO_DEPS_PINS])
        importlib.invalidate_caches()
    changed = [p.name for p, fn in ((_site_file("magma/compiler/var_model.py"), patch_var_model),
                                    (_site_file("lib/dl/slayer/__init__.py"), patch_slayer_init),
                                    (_site_file(MP_FILE), patch_start_method))
               if fn(p)]
    print("lava: patched " + ", ".join(changed) if changed else "lava: already patched")
    if not is_patched():
        print("lava: patch did not apply; lava-nc/lava-dl versions differ from", LAVA_PINS)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
