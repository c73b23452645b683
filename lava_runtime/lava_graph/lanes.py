"""Lanes: L independent copies of a network side by side in the same Lava processes.

Every state vector and message of the Lava graph (lava_runtime.lava_graph.graph) carries a lane
axis, shape (L, n) instead of (n,), so one Lava step advances L samples. Lane j of round r runs
sample r * L + j; all lanes share the window (W = T + padding steps), so every lane resets at
its own sample boundary at the same Lava step as the others, exactly as a single-lane run
resets between samples. Lanes of the last round without a sample (N not divisible by L) get
zero input and are not recorded.

Lava's runtime costs about 0.12 ms per process per step whatever the process computes; lanes
divide that cost by L. The per-lane cost (delay buffers, LIF state, messages) stays, so L is
chosen from the network size and the memory at hand (choose_lanes). This module does not
import Lava.
"""
from __future__ import annotations

import math
import os

from deployed.network import DeployedNetwork

# at FSDD size, 64 to 256 lanes gave similar samples/s (noisy shared machine; measure with
# bench/lava_speed.py --lanes N); more lanes only cost memory
MAX_AUTO_LANES = 256
MEMORY_FRACTION = 0.25  # of the available RAM (and of free /dev/shm) a run may use
MEMORY_CAP_BYTES = 2 ** 30  # and at most this much
CHANNEL_DEPTH = 64  # Lava's pypy_channel_size: messages each channel buffers in shared memory
_BYTES = 8  # per element (int64 / float64 state; int32 messages counted as 8 for headroom)


def samples_done(steps_done: int, window: int, lanes: int, n_samples: int) -> int:
    """Samples finished after `steps_done` Lava steps: lanes per finished window."""
    return min(n_samples, steps_done // window * lanes)


def lane_shape(lanes: int, n: int) -> tuple[int, ...]:
    """Shape of a population's vectors: (n,) for one lane (as Lava's stock models expect),
    (lanes, n) otherwise."""
    return (n,) if lanes == 1 else (lanes, n)


def bytes_per_lane(net: DeployedNetwork) -> int:
    """Estimated memory (bytes) one lane adds to a Lava run of `net`: per connection process
    (feed-forward and recurrent) its delay ring and two step temporaries ((max_delay + 1) *
    n_out each), per population its LIF state and temporaries (10 * n), and the shared-memory
    buffers of every channel (CHANNEL_DEPTH messages of the sender's width)."""
    state = 0
    messages = net.input.n_channels  # source -> first connections
    for layer in net.layers:
        n_slots = len(layer.processes())  # connection processes
        state += n_slots * 3 * (layer.max_delay + 1) * layer.n_out + 10 * layer.n_out
        # connections -> LIF a_in (one channel per slot), LIF -> next layer's slots, recorder
        messages += n_slots * layer.n_out + 2 * layer.n_out
        rec = layer.recurrent
        if rec is not None and rec.n_synapses:
            n_rec = len(rec.slots(layer.n_out))  # one connection process per slot
            state += n_rec * 3 * (rec.max_delay + 1) * layer.n_out
            # LIF -> each recurrent slot, each recurrent slot -> LIF a_in
            messages += 2 * n_rec * layer.n_out
    return _BYTES * (state + CHANNEL_DEPTH * messages)


def available_memory_bytes() -> int:
    """Bytes a run may use: MEMORY_FRACTION of the available RAM and of the free space of
    /dev/shm (Lava's channels live there), at most MEMORY_CAP_BYTES."""
    avail = MEMORY_CAP_BYTES / MEMORY_FRACTION
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = min(avail, int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        st = os.statvfs("/dev/shm")
        avail = min(avail, st.f_bavail * st.f_frsize)
    except OSError:
        pass
    return int(min(MEMORY_CAP_BYTES, MEMORY_FRACTION * avail))


def choose_lanes(net: DeployedNetwork, n_samples: int, *, memory_bytes: int | None = None,
                 max_lanes: int = MAX_AUTO_LANES) -> int:
    """Lanes for a run of `n_samples` samples: as many as memory allows (memory_bytes, default
    available_memory_bytes(), over bytes_per_lane(net)), at most max_lanes and n_samples, then
    evened out so that every round but none is short: L = ceil(N / ceil(N / L_max))."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    budget = available_memory_bytes() if memory_bytes is None else int(memory_bytes)
    most = max(1, min(int(max_lanes), n_samples, budget // max(1, bytes_per_lane(net))))
    rounds = math.ceil(n_samples / most)
    return math.ceil(n_samples / rounds)


def check_lanes(lanes, fast_models: bool = True, backend: str = "lava") -> None:
    """lanes: None (automatic) or a positive integer; more than one lane needs this runtime's
    ProcessModels (fast_models=True) and a simulated backend. Raises ValueError."""
    if lanes is None:
        return
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer (or None for automatic), got "
                         f"{lanes!r}")
    if lanes > 1 and not fast_models:
        raise ValueError(f"lanes={lanes}: Lava's stock delay models (--stock-models) run one "
                         f"lane only; use lanes=1 (--lanes 1) or this runtime's models")
    if lanes > 1 and backend == "loihi2":
        raise ValueError(f"lanes={lanes}: lanes run in this runtime's Python ProcessModels, "
                         f"which Loihi 2 hardware does not execute; use lanes=1 with backend "
                         f"'loihi2'")


def resolve_lanes(net: DeployedNetwork, n_samples: int, lanes: int | None,
                  fast_models: bool = True, backend: str = "lava") -> int:
    """The lane count of a run: `lanes` checked (check_lanes) or, if None, choose_lanes for
    this runtime's models on a simulated backend and 1 otherwise. Never more than n_samples."""
    check_lanes(lanes, fast_models, backend)
    if lanes is None:
        if not fast_models or backend == "loihi2":
            return 1
        return choose_lanes(net, n_samples)
    return min(lanes, n_samples)
