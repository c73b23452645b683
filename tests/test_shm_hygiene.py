"""The shared-memory leak check counts this test's segments, not another job's on the machine."""
from __future__ import annotations

import subprocess
import sys
import time
from multiprocessing import shared_memory

from helpers.shm_hygiene import leaked_shm, shm_entries

# Detaches from this process tree (double fork), then holds a mapped segment named as the
# sandbox names them for its own pid, until its stdin closes.
FOREIGN_JOB = """
import os, sys
from multiprocessing import shared_memory
r, w = os.pipe()
if os.fork():
    os.close(w); print(os.read(r, 100).decode(), flush=True); sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
os.close(r)
seg = shared_memory.SharedMemory(name=f"dsnn{os.getpid()}x0foreign_seg", create=True, size=64)
os.write(w, seg.name.encode()); os.close(w)
sys.stdin.read()
seg.close(); seg.unlink()
"""


def test_counts_own_segments_and_not_another_jobs():
    before = shm_entries()
    job = subprocess.Popen([sys.executable, "-c", FOREIGN_JOB], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    own = None
    try:
        foreign = job.stdout.readline().strip()
        assert foreign in shm_entries()
        assert leaked_shm(before, only_prefix="dsnn") == set()
        own = shared_memory.SharedMemory(name="dsnn999999999x0own_seg", create=True, size=64)
        assert leaked_shm(before, only_prefix="dsnn") == {own.name}
        assert leaked_shm(before) == {own.name}
    finally:
        if own is not None:
            own.close()
            own.unlink()
        job.stdin.close()
        job.wait(timeout=10)
    for _ in range(50):   # the detached job unlinks its segment once its stdin closes
        if foreign not in shm_entries():
            break
        time.sleep(0.1)
    assert leaked_shm(before) == set()
