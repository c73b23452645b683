"""Save / load a DeployedNetwork as HDF5 that lava-dl netx (`lava.lib.dl.netx.hdf5.Network`)
also loads.

Layout (all groups and attributes in creation order, no timestamps, so the same network always
gives the same bytes):

    /layer/0            type=b"input", shape=[C]                      (netx: input shape only)
    /layer/1..L         type=b"dense", shape=[n_out],
                        weight (n_out, n_in) int: W = weight * 2^weight_exp, the integer each
                                 synapse adds to a_in per payload unit (netx re-derives Lava's
                                 weight_exp / num_weight_bits from W and reproduces exactly this),
                        delay (n_out, n_in) int (steps; netx then uses DelayDense),
                        bias (n_out,) int (netx: bias_mant, with bias_exp = 6),
                        neuron/ type=b"CUBA", iDecay = du + 1, vDecay = dv, vThMant = vth,
                                refDelay = 1, gradedSpike = False
    /delaysnn           the project's own, complete description (netx never reads it):
                        attrs format, version, netx_complete, netx_problems (JSON),
                        profile_name, profile_version, class_names (JSON), meta (JSON)
                        [, layer_start (only when not "aligned")]
        input/          attrs n_channels, time_steps, num_message_bits, scale
                        [, event_threshold (feature units; absent = 0)]
        layers/<i>/     attrs name, n_in, n_out, weight_exp, num_weight_bits,
                        input_message_bits; datasets pre, post, delay, weight (int64, every
                        synapse, all slots); neuron/ attrs n, du, dv, vth, bias_exp, spiking,
                        v_scale, dataset bias_mant

                        [, recurrent/ (recurrent layers only): attrs weight_exp,
                        num_weight_bits; datasets pre, post, delay, weight (int64)]
                        [, neuron_exp (n_out,) int64 (per-neuron weight exponents only)]

A pair of neurons joined by several synapses (structure-multi) cannot be written in netx's
one-delay-per-pair layout: netx layers then hold slot 0 only and the root attribute
`netx_complete` is False (the delaysnn group is always complete). Neither can per-neuron weight
exponents (ConnectionLayer.neuron_exp; netx has one exponent per layer): the netx weights are
then rounded to the layer's exponent and `netx_complete` is False.

A recurrent layer is written in netx's form, type=b"dense_rec" with weight_rec (n_out, n_out)
[post, pre], only where netx computes it exactly (`netx_recurrent_form`, docs/design.md section
8): netx takes one (weight_exp, num_weight_bits) from hstack(weight, weight_rec) and gives both
connections the one `delay` array, and with a delay passes no weight_exp at all. So: (a) every
feed-forward and recurrent delay 0, written without `delay` (netx's Dense with the joint
exponent), or (b) n_in = n_out, one delay matrix that holds both parts' delays, and a joint
exponent of 0; in both, the integers each synapse adds to a_in under netx's rule must be this
network's. Otherwise the netx layer holds the feed-forward part (type dense) and
`netx_problems` says why.

Versions (docs/design.md section 8): a network that uses none of the features added after
version 1 (layer_start "zero", a spiking output layer, recurrent layers) is written as version
1, byte for byte as before; one that does is version 2, which older readers refuse; one with
per-neuron weight exponents is version 3, which version 2 readers refuse rather than ignore the
exponents. `load` reads all three.
Load netx with `Network(net_config=path, input_message_bits=net.input.num_message_bits)`.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import h5py
import numpy as np

from deployed import fixed_point as fp
from deployed import netx_rules
from deployed.network import (
    LAYER_START_ALIGNED,
    LAYER_STARTS,
    ConnectionLayer,
    DeployedNetwork,
    InputEncoding,
    NeuronParams,
    RecurrentSynapses,
)


class NetworkFileError(ValueError):
    """A network file cannot be written or read (the message names the file and what to do)."""

FORMAT = "delaysnn-deployed"
VERSION = 3  # the newest version written; READ_VERSIONS are read
READ_VERSIONS = (1, 2, 3)


def file_version(net: DeployedNetwork) -> int:
    """1 when `net` uses none of the version 2 features (its file is then byte-identical to
    what version 1 writers wrote), 3 with per-neuron weight exponents, else 2."""
    if any(L.neuron_exp is not None for L in net.layers):
        return 3
    new = (net.layer_start != LAYER_START_ALIGNED or net.layers[-1].neurons.spiking
           or any(L.recurrent is not None for L in net.layers))
    return 2 if new else 1


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def netx_weights(layer: ConnectionLayer, w: np.ndarray) -> np.ndarray:
    """Applied weights (n_out, n_in) -> W = w * 2^weight_exp as stored for netx (rounded to
    the nearest integer when the exponent is finer than netx can express, as are the rows of
    neurons with their own exponent, layer.neuron_exp; netx_problems says so)."""
    e = layer.weight_exp
    if layer.neuron_exp is not None:  # w: (n_out, n_in) rows, or the (S,) synapse list
        ne = np.asarray(layer.neuron_exp, dtype=np.int64)
        ne = ne[:, None] if np.ndim(w) == 2 else ne[layer.post]
        return np.rint(w * 2.0 ** (e - ne)).astype(np.int64)
    if e >= 0:
        return w << e
    return np.rint(w / 2.0 ** -e).astype(np.int64)


def _integer_weights(w: np.ndarray, e: int) -> np.ndarray | None:
    """w * 2^e as int64 when every product is an integer (each synapse adds that integer to
    a_in per payload unit, no floor involved), else None."""
    w = np.asarray(w, dtype=np.int64)
    if e >= 0:
        return w << e
    return w >> -e if np.array_equal((w >> -e) << -e, w) else None


def netx_recurrent_form(L: ConnectionLayer) -> tuple[dict | None, str]:
    """A recurrent layer in netx's dense_rec form ({"weight", "weight_rec", "delay" (None:
    written without)}, "") where netx computes exactly this layer, else (None, why)."""
    rec = L.recurrent
    assert rec is not None
    n = L.n_out
    if len(L.slots()) > 1 or len(rec.slots(n)) > 1:
        return None, "several synapses for some (post, pre) pairs; netx holds one per pair"
    if L.neuron_exp is not None and np.any(L.neuron_exp):
        return None, "per-neuron weight exponents; netx has one per layer"
    if max(L.max_delay, rec.max_delay) > fp.NETX_MAX_DELAY:
        return None, f"delays above {fp.NETX_MAX_DELAY} (netx clamps them)"
    (w_ff, d_ff), (w_rec, d_rec) = L.slots()[0], rec.slots(n)[0]
    W_ff, W_rec = _integer_weights(w_ff, L.weight_exp), _integer_weights(w_rec, rec.weight_exp)
    if W_ff is None or W_rec is None:
        return None, ("a weight_exp finer than the weights (the a_in sums are floored), which "
                      "netx's integer weights cannot express")
    delays = bool(L.max_delay or rec.max_delay)
    D = None
    if delays:
        if L.n_in != n:
            return None, (f"netx applies the feed-forward delay array ({n}, {L.n_in}) to the "
                          f"recurrent synapses too, which needs n_in = n_out")
        ff, rc = W_ff != 0, W_rec != 0
        if np.any(d_ff[ff & rc] != d_rec[ff & rc]):
            return None, ("netx gives recurrent synapses the feed-forward delays, and some "
                          "(post, pre) pair has different feed-forward and recurrent delays")
        D = np.where(ff, d_ff, d_rec)
    try:
        w_joint, nwb, wexp = netx_rules.weight_rule(np.hstack([W_ff, W_rec]))
    except ValueError as e:
        return None, f"netx's joint weight rule: {e}"
    if delays and wexp != 0:
        return None, (f"netx's joint weight exponent is {wexp}, and with delays netx's "
                      "RecurrentDense passes no weight exponent (it applies 0)")
    for W, part in ((W_ff, w_joint[:, :L.n_in]), (W_rec, w_joint[:, L.n_in:])):
        got = _integer_weights(fp.lava_weights(part, nwb), wexp) if 1 <= nwb <= 8 else None
        if got is None or not np.array_equal(got, W):
            return None, (f"netx's joint weight rule ({nwb} weight bits, exponent {wexp}) does "
                          "not reproduce both parts' weights")
    return {"weight": W_ff, "weight_rec": W_rec, "delay": D}, ""


def netx_problems(net: DeployedNetwork) -> list[str]:
    """Why the netx layers would not compute what the network does ([] = they do)."""
    out = []
    for L in net.layers:
        form = None
        if L.recurrent is not None:
            form, why = netx_recurrent_form(L)
            if form is None:
                out.append(f"{L.name}: recurrent synapses not in netx's form ({why}); the netx "
                           "layer holds the feed-forward part only")
        # a layer in dense_rec form has its weights and delays checked as netx reads both parts
        out += _layer_problems(L, weights=form is None)
        if net.layers.index(L) == 0 and L.input_message_bits != net.input.num_message_bits:
            out.append(f"{L.name}: input_message_bits differs from the input encoding")
    return out


def _layer_problems(L: ConnectionLayer, weights: bool) -> list[str]:
    out = []
    if weights and len(L.slots()) > 1:
        out.append(f"{L.name}: {len(L.slots())} synapses for some (post, pre) pairs "
                   "(structure-multi); netx holds slot 0 only")
    if L.neurons.bias_exp != fp.NETX_BIAS_EXP and np.any(L.neurons.bias_mant != 0):
        out.append(f"{L.name}: bias_exp {L.neurons.bias_exp} (netx always uses 6)")
    if not weights:
        return out
    if L.max_delay > fp.NETX_MAX_DELAY:
        out.append(f"{L.name}: max delay {L.max_delay} > {fp.NETX_MAX_DELAY} "
                   "(netx clamps delays)")
    W = netx_weights(L, L.weight)
    if L.neuron_exp is not None and np.any(L.neuron_exp):
        out.append(f"{L.name}: per-neuron weight exponents (netx has one per layer); netx "
                   "weights are rounded (approximate)")
    elif L.weight_exp < 0 and not np.array_equal(W << -L.weight_exp, L.weight):
        out.append(f"{L.name}: weight_exp {L.weight_exp} is finer than netx can express; "
                   "netx weights are rounded (approximate)")
    mode = fp.sign_mode(W)
    lo, hi = {"mixed": (-128, 127), "excitatory": (0, 255), "inhibitory": (-255, 0)}[mode]
    if W.size and (W.min() < lo or W.max() > hi):
        out.append(f"{L.name}: netx weights {W.min()}..{W.max()} outside {lo}..{hi}")
    if W.size and not np.any(W):
        out.append(f"{L.name}: all weights are zero (netx cannot choose a weight exponent)")
    return out


def _scalar_bytes(g: h5py.Group, key: str, text: str) -> None:
    g.create_dataset(key, data=np.array([text.encode("ascii")], dtype=f"S{len(text)}"))


def _write(f: h5py.File, net: DeployedNetwork) -> None:
    problems = netx_problems(net)
    f.attrs["netx_complete"] = not problems
    lay = f.create_group("layer", track_order=True)
    g0 = lay.create_group("0", track_order=True)
    _scalar_bytes(g0, "type", "input")
    g0.create_dataset("shape", data=np.array([net.input.n_channels], dtype=np.int64))
    for i, L in enumerate(net.layers):
        g = lay.create_group(str(i + 1), track_order=True)
        form = netx_recurrent_form(L)[0] if L.recurrent is not None else None
        _scalar_bytes(g, "type", "dense" if form is None else "dense_rec")
        g.create_dataset("shape", data=np.array([L.n_out], dtype=np.int64))
        if form is None:
            w0, d0 = L.slots()[0]
            g.create_dataset("weight", data=netx_weights(L, w0).astype(np.int64))
            g.create_dataset("delay", data=d0.astype(np.int64))
        else:
            g.create_dataset("weight", data=form["weight"])
            g.create_dataset("weight_rec", data=form["weight_rec"])
            if form["delay"] is not None:
                g.create_dataset("delay", data=form["delay"].astype(np.int64))
        if np.any(L.neurons.bias_mant != 0):
            g.create_dataset("bias", data=L.neurons.bias_mant.astype(np.int64))
        n = g.create_group("neuron", track_order=True)
        _scalar_bytes(n, "type", "CUBA")
        n.create_dataset("iDecay", data=np.int64(L.neurons.du + 1))
        n.create_dataset("vDecay", data=np.int64(L.neurons.dv))
        n.create_dataset("vThMant", data=np.int64(L.neurons.vth))
        n.create_dataset("refDelay", data=np.int64(1))
        n.create_dataset("gradedSpike", data=np.bool_(False))
    own = f.create_group("delaysnn", track_order=True)
    own.attrs["format"] = FORMAT
    own.attrs["version"] = file_version(net)
    own.attrs["netx_complete"] = not problems
    own.attrs["netx_problems"] = _json(problems)
    own.attrs["profile_name"] = net.profile_name
    own.attrs["profile_version"] = net.profile_version
    own.attrs["class_names"] = _json(list(net.class_names))
    own.attrs["meta"] = _json(net.meta)
    if net.layer_start != LAYER_START_ALIGNED:  # written only when set (version 2)
        own.attrs["layer_start"] = net.layer_start
    gi = own.create_group("input", track_order=True)
    gi.attrs["n_channels"] = np.int64(net.input.n_channels)
    gi.attrs["time_steps"] = np.int64(net.input.time_steps)
    gi.attrs["num_message_bits"] = np.int64(net.input.num_message_bits)
    gi.attrs["scale"] = np.float64(net.input.scale)
    if net.input.event_threshold > 0:   # written only when set: older files stay byte-identical
        gi.attrs["event_threshold"] = np.float64(net.input.event_threshold)
    gl = own.create_group("layers", track_order=True)
    for i, L in enumerate(net.layers):
        g = gl.create_group(str(i), track_order=True)
        g.attrs["name"] = L.name
        for key in ("n_in", "n_out", "weight_exp", "num_weight_bits", "input_message_bits"):
            g.attrs[key] = np.int64(getattr(L, key))
        for key in ("pre", "post", "delay", "weight"):
            g.create_dataset(key, data=np.asarray(getattr(L, key), dtype=np.int64))
        n = g.create_group("neuron", track_order=True)
        nr = L.neurons
        for key in ("n", "du", "dv", "vth", "bias_exp"):
            n.attrs[key] = np.int64(getattr(nr, key))
        n.attrs["spiking"] = np.bool_(nr.spiking)
        n.attrs["v_scale"] = np.float64(nr.v_scale)
        n.create_dataset("bias_mant", data=np.asarray(nr.bias_mant, dtype=np.int64))
        if L.recurrent is not None:  # written only when set (version 2)
            r = g.create_group("recurrent", track_order=True)
            r.attrs["weight_exp"] = np.int64(L.recurrent.weight_exp)
            r.attrs["num_weight_bits"] = np.int64(L.recurrent.num_weight_bits)
            for key in ("pre", "post", "delay", "weight"):
                r.create_dataset(key, data=np.asarray(getattr(L.recurrent, key),
                                                      dtype=np.int64))
        if L.neuron_exp is not None:  # written only when set (version 3)
            g.create_dataset("neuron_exp", data=np.asarray(L.neuron_exp, dtype=np.int64))


def save(net: DeployedNetwork, path: str | Path) -> list[str]:
    """Write `net` to `path` atomically (temp file in the same folder, then os.replace).

    Returns the netx problems ([] when the netx layers are complete)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise NetworkFileError(f"output folder {path.parent} does not exist")
    _json(net.meta)  # fail before touching the disk if meta is not JSON-serialisable
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w", libver=("earliest", "v110"), track_order=True) as f:
            _write(f, net)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return netx_problems(net)


REEXPORT = "re-export it with python -m export.to_lava"


def open_hdf5(path: Path, error: type[Exception], what: str, hint: str) -> h5py.File:
    """h5py.File(path, "r"), or `error` saying in one line why it cannot be opened:
    "{what} {path} is a truncated HDF5 file (...); {hint}"."""
    try:
        return h5py.File(path, "r")
    except OSError as e:
        msg = " ".join(str(e).split())
        sizes = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", msg)
        if not h5py.is_hdf5(path):
            why = "is not an HDF5 file (no HDF5 signature)"
        elif sizes:
            why = f"is a truncated HDF5 file ({sizes[1]} of {sizes[2]} bytes)"
        else:
            why = f"is an HDF5 file that cannot be opened ({msg})"
        raise error(f"{what} {path} {why}; {hint}") from None


def _open(path: Path) -> h5py.File:
    """h5py.File(path, "r"), or NetworkFileError saying in one line why it cannot be opened."""
    return open_hdf5(path, NetworkFileError, "network file",
                     "pass a network written by python -m export.to_lava")


def load(path: str | Path) -> DeployedNetwork:
    """Read a file written by `save` (from its complete `delaysnn/` group).

    Every unusable file raises NetworkFileError with one line naming the file and the problem: not
    HDF5, truncated, not written by export.to_lava, another format version, or damaged."""
    path = Path(path)
    if not path.is_file():
        raise NetworkFileError(f"network file {path} does not exist")
    with _open(path) as f:
        if "delaysnn" not in f:
            raise NetworkFileError(f"network file {path} is HDF5 but was not written by "
                              f"export.to_lava (no 'delaysnn' group); {REEXPORT}")
        own = f["delaysnn"]
        fmt, version = own.attrs.get("format"), own.attrs.get("version")
        if fmt != FORMAT:
            raise NetworkFileError(f"network file {path} has a 'delaysnn' group of format {fmt!r}, "
                              f"not {FORMAT!r}: it was not written by export.to_lava; {REEXPORT}")
        if not isinstance(version, (int, np.integer)) or int(version) not in READ_VERSIONS:
            raise NetworkFileError(f"network file {path} was written in {FORMAT} format version "
                              f"{version!r}; this code reads versions "
                              f"{', '.join(map(str, READ_VERSIONS))} ({REEXPORT})")
        try:
            return _read(own)
        except (KeyError, ValueError, TypeError, OSError) as e:
            why = " ".join(str(e.args[0] if isinstance(e, KeyError) and e.args else e).split())
            raise NetworkFileError(f"network file {path} is damaged or incomplete ({why}); "
                              f"{REEXPORT}") from None


def _read(own: h5py.Group) -> DeployedNetwork:
    gi = own["input"]
    enc = InputEncoding(n_channels=int(gi.attrs["n_channels"]),
                        time_steps=int(gi.attrs["time_steps"]),
                        num_message_bits=int(gi.attrs["num_message_bits"]),
                        scale=float(gi.attrs["scale"]),
                        event_threshold=float(gi.attrs.get("event_threshold", 0.0)))
    layers = []
    gl = own["layers"]
    for i in range(len(gl)):
        g = gl[str(i)]
        n = g["neuron"]
        nr = NeuronParams(n=int(n.attrs["n"]), du=int(n.attrs["du"]), dv=int(n.attrs["dv"]),
                          vth=int(n.attrs["vth"]), bias_mant=n["bias_mant"][()],
                          bias_exp=int(n.attrs["bias_exp"]), spiking=bool(n.attrs["spiking"]),
                          v_scale=float(n.attrs["v_scale"]))
        rec = None
        if "recurrent" in g:
            r = g["recurrent"]
            rec = RecurrentSynapses(pre=r["pre"][()], post=r["post"][()],
                                    delay=r["delay"][()], weight=r["weight"][()],
                                    weight_exp=int(r.attrs["weight_exp"]),
                                    num_weight_bits=int(r.attrs["num_weight_bits"]))
        layers.append(ConnectionLayer(
            name=str(g.attrs["name"]), n_in=int(g.attrs["n_in"]), n_out=int(g.attrs["n_out"]),
            pre=g["pre"][()], post=g["post"][()], delay=g["delay"][()],
            weight=g["weight"][()], weight_exp=int(g.attrs["weight_exp"]),
            num_weight_bits=int(g.attrs["num_weight_bits"]), neurons=nr,
            input_message_bits=int(g.attrs["input_message_bits"]), recurrent=rec,
            neuron_exp=g["neuron_exp"][()] if "neuron_exp" in g else None))
    layer_start = str(own.attrs.get("layer_start", LAYER_START_ALIGNED))
    if layer_start not in LAYER_STARTS:
        raise ValueError(f"layer_start {layer_start!r} is not one of {LAYER_STARTS}")
    return DeployedNetwork(layers=layers, input=enc,
                           class_names=json.loads(own.attrs["class_names"]),
                           profile_name=str(own.attrs["profile_name"]),
                           profile_version=str(own.attrs["profile_version"]),
                           meta=json.loads(own.attrs["meta"]), layer_start=layer_start)
