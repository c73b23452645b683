"""Import a network written by lava-dl (SLAYER's `export_hdf5`: the netx HDF5 format) as this
project's DeployedNetwork, computing exactly what lava-dl's netx runs in Lava; then the profile
check, the netx + delaysnn HDF5 file, emulator, Lava graph and budget as for any export.

    python -m export.from_netx NET.net --out net.h5 [--profile loihi2] [--json export.json] \
        [--time-steps 100] [--input-message-bits 0]

is a thin layer over `netx_to_network(path, profile, time_steps=, input_message_bits=) ->
(DeployedNetwork, report)` and `deployed.netx_h5.save`. docs/design.md section 8 has the design.

Read as `lava.lib.dl.netx.hdf5.Network(net_config=path, input_message_bits=...)` reads it, its
arithmetic mirrored in deployed.netx_rules: layer/0.. in order; an optional `input` layer
(shape only) first, then `dense` or `dense_rec` layers, any number, with CUBA or LOIHI neurons:
- weights W (n_out, n_in) integers: synapses where W != 0; netx's weight_exp / num_weight_bits;
  stored as Lava applies them (w = W << -weight_exp);
- `delay` (steps): scalar, per post neuron (n_out), per input (n_in) or per synapse, broadcast as
  netx does (no `delay`: 0);
- `dense_rec` (netx's RecurrentDense): `weight_rec` (n_out, n_out) [post, pre] becomes the
  layer's recurrent synapses where it is nonzero. As netx does: one weight_exp and
  num_weight_bits from hstack(weight, weight_rec) (each part then clipped and truncated by its
  own Lava process, with its own sign mode), the one `delay` array for both parts (so a delay
  needs n_in = n_out; netx builds nothing else), and with a `delay` no weight exponent at all
  (lava-dl 0.6.0's RecurrentDense passes none: 0 for both parts);
- neuron: du = iDecay - 1, dv = vDecay, vth = vThMant, bias_mant = `bias` with bias_exp 6;
  refDelay must be 1 (what Lava's LIF does); gradedSpike is kept in meta only: netx ignores it
  and Lava's LIF sends binary spikes, so does the converted layer (the report warns);
- the last layer spikes (its spikes are the output), unless its threshold can never be crossed
  (vThMant >= 2**17, SLAYER's Affine): then it is the usual non-spiking voltage readout.
Input: `input_message_bits` (netx's argument of that name; 0 = binary spikes) for `time_steps`
steps (the file holds no length), scale 1. Timing: every layer starts from zero state at the
window's first step (`layer_start` "zero"), as netx runs a network (no reset_interval); one step
of latency per layer, a spike at step t over delay d arriving at t + 1 + d, as everywhere here.

Refused before anything is written, in one line naming the file and the layer (index and type):
files that are missing, not HDF5, truncated or HDF5 without netx's `layer` group; every block
other than input, dense and dense_rec (conv, pool, flatten, average, concat, convT, unpool,
dense_comp), an input layer with a neuron, neuron types other than CUBA /
LOIHI (SDNN sigma-delta, RF resonators, ...), keys netx would ignore or that would change the
arithmetic (e.g. `messageBits`, a norm's `weight_exp`), values netx would alter (clipped weights,
delays above 62, which netx clamps with a warning, non-integer weights, biases or delays), values
Lava's fields cannot hold (iDecay 0, vDecay 4096), and any violation of the hardware profile
(delays above its max_delay included).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import h5py
import numpy as np

from deployed import fixed_point as fp
from deployed import netx_h5
from deployed import netx_rules as nr
from deployed.limits import check_network, usage
from deployed.network import (
    LAYER_START_ZERO,
    ConnectionLayer,
    DeployedNetwork,
    InputEncoding,
    NeuronParams,
    RecurrentSynapses,
)
from deployed.validate import NetworkError, validate_network
from export.errors import ExportError

EXPORTER = "delaysnn export.from_netx 1"
DEFAULT_TIME_STEPS = 100  # steps per sample when none is given (the data layer's default)
NEURON_TYPES = ("CUBA", "LOIHI")
LAYER_KEYS = ("type", "shape", "inFeatures", "outFeatures", "weight", "delay", "bias", "neuron")
REC_KEYS = LAYER_KEYS + ("weight_rec",)  # dense_rec
NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")
BLOCKS = {  # layer types netx knows that this converter refuses, and what they are
    "conv": "convolution", "pool": "pooling", "flatten": "flatten", "average": "average",
    "concat": "concatenation", "convT": "transposed convolution", "unpool": "unpooling",
    "dense_comp": "complex dense (resonator)",
}
NEURONS = {"SDNN": "sigma-delta", "RF": "resonate-and-fire", "RF_IZ": "resonate-and-fire "
           "Izhikevich", "ADRF": "adaptive resonate-and-fire", "ALIF": "adaptive LIF"}
GRADED_WARNING = ("gradedSpike is set, but lava-dl's netx ignores it (Lava's LIF sends binary "
                  "spikes; netx reads a payload width only from messageBits): this layer sends "
                  "binary spikes, as netx runs it, not SLAYER's graded ones")


class NetxFileError(ExportError):
    """A netx file cannot be imported (the message names the file, the layer and what to do)."""


def _refuse(path: Path, why: str) -> NoReturn:
    raise NetxFileError(f"netx file {path}: {why}; nothing was written")


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise NetxFileError(f"netx file {path} does not exist")
    return netx_h5.open_hdf5(path, NetxFileError, "netx file",
                             "pass a network written by lava-dl's export_hdf5")


def _text(ds) -> str:
    """A netx string dataset (shape (1,) or scalar bytes), as netx's NetDict reads it."""
    v = ds[()]
    if isinstance(v, np.ndarray) and v.shape:
        v = v.reshape(-1)[0]
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def _integers(path: Path, where: str, what: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iub" and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))):
        _refuse(path, f"{where}: {what} must be integers (netx would truncate them)")
    return a.astype(np.int64)


def _scalar(path: Path, where: str, group, key: str) -> int:
    v = _integers(path, where, key, group[key][()])
    if v.size != 1:
        _refuse(path, f"{where}: {key} must be one value, got shape {v.shape}")
    return int(v.reshape(-1)[0])


def _neuron(path: Path, where: str, g, n: int, last: bool) -> tuple[dict, list[str]]:
    """Neuron group -> (dict of NeuronParams fields and netx provenance, warnings)."""
    if "neuron" not in g or not isinstance(g["neuron"], h5py.Group):
        _refuse(path, f"{where} has no neuron group (netx would use a non-leaky integrator, "
                      "iDecay 0, which Lava's du cannot hold)")
    ng = g["neuron"]
    kind = _text(ng["type"]) if "type" in ng else "?"
    if kind not in NEURON_TYPES:
        name = NEURONS.get(kind) or next((v for k, v in NEURONS.items() if k in kind), None)
        _refuse(path, f"{where} has neuron type {kind!r}" + (f" ({name})" if name else "")
                + f"; only {' and '.join(NEURON_TYPES)} neurons are supported")
    extra = [k for k in ng.keys() if k not in NEURON_KEYS]
    if extra:
        _refuse(path, f"{where}: neuron key(s) {', '.join(map(repr, extra))} are not supported "
                      "(netx would ignore them or change the payload width)")
    for key in ("iDecay", "vDecay", "vThMant"):
        if key not in ng:
            _refuse(path, f"{where}: neuron has no {key}")
    vals = {k: _scalar(path, where, ng, k) for k in ("iDecay", "vDecay", "vThMant")}
    try:
        du, dv, vth = nr.neuron_fields(vals["iDecay"], vals["vDecay"], vals["vThMant"])
    except ValueError as e:
        _refuse(path, f"{where}: {e}")
    ref = _scalar(path, where, ng, "refDelay") if "refDelay" in ng else 1
    if ref != 1:
        _refuse(path, f"{where}: refDelay {ref} (Lava's LIF, which netx builds, implements "
                      "refDelay 1 only)")
    graded = bool(np.asarray(ng["gradedSpike"][()]).reshape(-1)[0]) if "gradedSpike" in ng \
        else False
    warnings = [f"{where}: {GRADED_WARNING}"] if graded else []
    spiking = not (last and nr.threshold_unreachable(vth))
    if not spiking:
        warnings.append(f"{where}: vThMant {vth} can never be crossed (|v| <= 2**23 - 1): a "
                        f"non-spiking voltage readout, stored with vth {2 ** 17 - 1}")
        vth = 2 ** 17 - 1
    elif vth > 2 ** 17 - 1:
        _refuse(path, f"{where}: vThMant {vth} exceeds Lava's 17-bit threshold")
    bias = np.zeros(n, dtype=np.int64)
    if "bias" in g:
        b = _integers(path, where, "bias", g["bias"][()])
        if b.size not in (1, n):
            _refuse(path, f"{where}: bias has {b.size} values for {n} neurons")
        bias = np.broadcast_to(b.reshape(-1), (n,)).astype(np.int64)
    fields = {"du": du, "dv": dv, "vth": vth, "bias_mant": bias, "spiking": spiking}
    source = {"neuron_type": kind, "iDecay": vals["iDecay"], "vDecay": vals["vDecay"],
              "vThMant": vals["vThMant"], "refDelay": ref, "gradedSpike": graded}
    return {"fields": fields, "source": source}, warnings


def _dense(path: Path, idx: int, g, n_in: int | None, last: bool, input_bits: int,
           rec: bool = False):
    """One `dense` (or `dense_rec`, rec=True) layer -> (ConnectionLayer, its netx provenance,
    warnings)."""
    where = f"layer {idx} ({'dense_rec' if rec else 'dense'})"
    extra = [k for k in g.keys() if k not in (REC_KEYS if rec else LAYER_KEYS)]
    if extra:
        _refuse(path, f"{where}: key(s) {', '.join(map(repr, extra))} are not supported")
    if "weight" not in g or not isinstance(g["weight"], h5py.Dataset):
        _refuse(path, f"{where} has no weight matrix" + (" (complex weights: dense_comp)"
                                                          if "weight" in g else ""))
    n = int(np.prod(g["shape"][()])) if "shape" in g else None
    W = _integers(path, where, "weights", g["weight"][()])
    if W.ndim == 1 and n:
        W = W.reshape(n, -1)  # as netx does
    if W.ndim != 2 or (n is not None and W.shape[0] != n):
        _refuse(path, f"{where}: weight of shape {W.shape} does not fit its {n} neurons")
    n_out, n_layer_in = W.shape
    if n_in is not None and n_layer_in != n_in:
        _refuse(path, f"{where}: weight has {n_layer_in} inputs but the layer before gives {n_in}")
    W_rec = _weight_rec(path, where, g, n_out) if rec else None
    try:
        w_netx, nwb, wexp = nr.weight_rule(W if W_rec is None else np.hstack([W, W_rec]))
        D, layout = (nr.broadcast_delay(g["delay"][()], n_out, n_layer_in) if "delay" in g
                     else (np.zeros_like(W), "none"))
    except ValueError as e:
        _refuse(path, f"{where}: {e}")
    if not 1 <= nwb <= 8:
        _refuse(path, f"{where}: netx would give these weights {nwb} weight bits, outside "
                      "Lava's 1..8")
    neuron, warnings = _neuron(path, where, g, n_out, last)
    recurrent = None
    if W_rec is not None:
        if "delay" in g and n_layer_in != n_out:
            _refuse(path, f"{where}: a delay with {n_layer_in} inputs and {n_out} neurons: netx "
                          "gives the recurrent weights the feed-forward delay array, which "
                          "needs n_in = n_out")
        if not neuron["fields"]["spiking"]:
            _refuse(path, f"{where}: a recurrent layer whose threshold can never be crossed "
                          "sends no spikes back")
        if "delay" in g:
            wexp = 0  # lava-dl 0.6.0 RecurrentDense with delays passes no weight_exp
        # each part is its own Lava process: clipped and truncated with its own sign mode
        w_rec = fp.lava_weights(w_netx[:, n_layer_in:], nwb)
        w_netx = fp.lava_weights(w_netx[:, :n_layer_in], nwb)
        rpost, rpre = np.nonzero(W_rec)
        d_rec = D[rpost, rpre] if "delay" in g else np.zeros(rpost.size)  # no delay: Dense
        recurrent = RecurrentSynapses(
            pre=rpre.astype(np.int64), post=rpost.astype(np.int64),
            delay=d_rec.astype(np.int64), weight=w_rec[rpost, rpre].astype(np.int64),
            weight_exp=wexp, num_weight_bits=nwb)
    post, pre = np.nonzero(W)
    layer = ConnectionLayer(
        name=f"dense{idx}", n_in=n_layer_in, n_out=n_out, pre=pre.astype(np.int64),
        post=post.astype(np.int64), delay=D[post, pre].astype(np.int64),
        weight=w_netx[post, pre].astype(np.int64), weight_exp=wexp, num_weight_bits=nwb,
        neurons=NeuronParams(n=n_out, bias_exp=nr.NETX_BIAS_EXP, **neuron["fields"]),
        input_message_bits=input_bits, recurrent=recurrent)
    source = {"index": idx, "type": "dense_rec" if rec else "dense", "delay_layout": layout,
              **neuron["source"]}
    return layer, source, warnings


def _weight_rec(path: Path, where: str, g, n_out: int) -> np.ndarray:
    """A dense_rec layer's weight_rec (n_out, n_out) integers, reshaped as netx does."""
    if "weight_rec" not in g or not isinstance(g["weight_rec"], h5py.Dataset):
        _refuse(path, f"{where} has no weight_rec matrix (netx's RecurrentDense needs one)")
    W = _integers(path, where, "recurrent weights", g["weight_rec"][()])
    if W.ndim == 1:
        W = W.reshape(n_out, -1)  # as netx does
    if W.shape != (n_out, n_out):
        _refuse(path, f"{where}: weight_rec of shape {W.shape} does not fit its {n_out} neurons "
                      f"({n_out}, {n_out})")
    return W


def read_netx(path: str | Path, *, time_steps: int = DEFAULT_TIME_STEPS,
              input_message_bits: int = 0) -> tuple[DeployedNetwork, dict]:
    """A netx HDF5 file -> (DeployedNetwork (profile fields empty), info: netx provenance per
    layer and warnings). Raises NetxFileError (one line) for anything it does not convert."""
    path = Path(path)
    if int(time_steps) < 1:
        raise NetxFileError(f"time_steps must be >= 1, got {time_steps}")
    if not 0 <= int(input_message_bits) <= 24:
        raise NetxFileError(f"input_message_bits must be 0..24 (0 = binary spikes), got "
                            f"{input_message_bits}")
    with _open(path) as f:
        lay = f.get("layer")
        if not isinstance(lay, h5py.Group) or len(lay) == 0:
            _refuse(path, "is HDF5 but not a netx network (no 'layer' group of layers 0, 1, ...)")
        names = set(lay.keys())
        if names != {str(i) for i in range(len(names))}:
            _refuse(path, f"layer groups must be named 0..{len(names) - 1}, got "
                          f"{sorted(names, key=str)}")
        n_in: int | None = None
        layers: list[ConnectionLayer] = []
        sources: list[dict] = []
        warnings: list[str] = []
        try:
            for idx in range(len(names)):
                g = lay[str(idx)]
                kind = _text(g["type"]) if isinstance(g, h5py.Group) and "type" in g else "?"
                if kind == "input":
                    if idx != 0:
                        _refuse(path, f"layer {idx} (input) is not the first layer")
                    if "neuron" in g:
                        _refuse(path, "layer 0 (input) has a neuron (netx's Input block, a LIF "
                                      "on the input); only a shape-only input layer is supported")
                    n_in = int(np.prod(g["shape"][()]))
                    sources.append({"index": 0, "type": "input"})
                    continue
                if kind not in ("dense", "dense_rec"):
                    what = BLOCKS.get(kind, "a block netx does not define")
                    _refuse(path, f"layer {idx} ({kind}) is not supported: {what}; only input, "
                                  "dense and dense_rec layers are")
                layer, src, warn = _dense(path, idx, g, n_in, idx == len(names) - 1,
                                          int(input_message_bits) if not layers else 0,
                                          rec=kind == "dense_rec")
                layers.append(layer)
                sources.append(src)
                warnings += warn
                n_in = layer.n_out
        except (KeyError, OSError, TypeError) as e:
            why = " ".join(str(e.args[0] if isinstance(e, KeyError) and e.args else e).split())
            _refuse(path, f"is damaged or incomplete ({why})")
    if not layers:
        _refuse(path, "holds no dense layer")
    for L in layers[:-1]:
        if not L.neurons.spiking:  # pragma: no cover - only the last layer can be a readout
            _refuse(path, f"{L.name} is a hidden layer that never spikes")
    enc = InputEncoding(n_channels=layers[0].n_in, time_steps=int(time_steps),
                        num_message_bits=int(input_message_bits), scale=1.0)
    net = DeployedNetwork(layers=layers, input=enc,
                          class_names=[str(j) for j in range(layers[-1].n_out)],
                          profile_name="", profile_version="", layer_start=LAYER_START_ZERO)
    return net, {"layers": sources, "warnings": warnings}


def netx_to_network(path: str | Path, profile: str = "loihi2", *,
                    time_steps: int = DEFAULT_TIME_STEPS, input_message_bits: int = 0
                    ) -> tuple[DeployedNetwork, dict]:
    """netx HDF5 file -> (DeployedNetwork checked against `profile`, report dict).

    time_steps: steps per sample (the file holds none). input_message_bits: payload width of
    the input (netx's Network argument; 0 = binary spikes). Raises NetxFileError (an
    ExportError, one line naming the file) before any file is written."""
    from hw_profiles import ProfileError, load_profile
    from trainer.file_io import sha256_file

    path = Path(path)
    net, info = read_netx(path, time_steps=time_steps, input_message_bits=input_message_bits)
    try:
        prof = load_profile(profile)
    except ProfileError as e:
        raise NetxFileError(f"{e}") from None
    try:
        validate_network(net, "lava")
    except NetworkError as e:
        _refuse(path, f"{e}")
    violations, mapping = check_network(net, prof)
    if violations:
        _refuse(path, f"does not fit hardware profile {prof.name!r}: "
                      + "; ".join(str(v) for v in violations))
    net.profile_name, net.profile_version = prof.name, prof.version
    sha = sha256_file(path)
    net.meta = {"importer": EXPORTER,
                "netx_source": {"file": path.name, "sha256": sha, "layers": info["layers"]},
                "import_options": {"time_steps": int(time_steps),
                                   "input_message_bits": int(input_message_bits)}}
    problems = netx_h5.netx_problems(net)
    report = {
        "source": {"path": str(path), "sha256": sha, "format": "lava-dl netx HDF5"},
        "profile": {"name": prof.name, "version": prof.version},
        "layer_start": net.layer_start,
        "latency_steps": net.latency,
        "input_encoding": {"n_channels": net.input.n_channels, "time_steps": net.input.time_steps,
                           "num_message_bits": net.input.num_message_bits},
        "layers": [_summary(L, s) for L, s in zip(net.layers,
                                                   [s for s in info["layers"]
                                                    if s["type"] != "input"])],
        "output": "spikes" if net.readout.neurons.spiking else "voltage (non-spiking readout)",
        "profile_check": {"violations": [], "usage": usage(net.layers, mapping)},
        "netx": {"complete": not problems, "problems": problems},
        "warnings": list(info["warnings"]),
    }
    return net, report


def _summary(L: ConnectionLayer, src: dict) -> dict:
    nrn = L.neurons
    return {"name": L.name, "file_layer": src["index"], "n_in": L.n_in, "n_out": L.n_out,
            "synapses": L.n_synapses, "delay_layout": src["delay_layout"],
            "max_delay": L.max_delay, "weight_exp": L.weight_exp,
            "num_weight_bits": L.num_weight_bits, "du": nrn.du, "dv": nrn.dv, "vth": nrn.vth,
            "recurrent_synapses": 0 if L.recurrent is None else L.recurrent.n_synapses,
            "bias_nonzero": int(np.count_nonzero(nrn.bias_mant)), "spiking": nrn.spiking,
            "neuron_type": src["neuron_type"], "graded_spike_in_file": src["gradedSpike"]}


def format_report(report: dict) -> str:
    """A few lines for the terminal."""
    lines = [f"netx import of {report['source']['path']} for profile "
             f"{report['profile']['name']}: layers start at window step 0 (as netx runs them), "
             f"latency {report['latency_steps']} steps, output {report['output']}"]
    for s in report["layers"]:
        lines.append(f"  {s['name']}: {s['n_in']} -> {s['n_out']}, {s['synapses']} synapses, "
                     f"delays {s['delay_layout']} (max {s['max_delay']}), weight_exp "
                     f"{s['weight_exp']}, {s['num_weight_bits']} weight bits, du {s['du']}, "
                     f"dv {s['dv']}, vth {s['vth']}"
                     + (f", {s['bias_nonzero']} biases" if s["bias_nonzero"] else "")
                     + (f", {s['recurrent_synapses']} recurrent synapses"
                        if s.get("recurrent_synapses") else ""))
    lines += [f"  warning: {w}" for w in report["warnings"]]
    if report.get("output_file"):
        lines.append(f"wrote {report['output_file']}")
    return "\n".join(lines)


def build_parser(prog: str = "python -m export.from_netx") -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser(prog, __doc__)
    ap.add_argument("netx_file", help="netx HDF5 file written by lava-dl (export_hdf5)")
    ap.add_argument("--out", required=True, help="HDF5 file to write (netx + delaysnn groups)")
    ap.add_argument("--profile", default="loihi2",
                    help="hardware profile name or .toml path (default: loihi2)")
    ap.add_argument("--json", default=None, help="also write the report as JSON here "
                                                 "(default: none)")
    ap.add_argument("--time-steps", type=int, default=DEFAULT_TIME_STEPS,
                    help=f"steps per sample; the file holds none (default: {DEFAULT_TIME_STEPS})")
    ap.add_argument("--input-message-bits", type=int, default=0,
                    help="payload bits of the input, netx's input_message_bits (default: 0, "
                         "binary spikes)")
    return ap


def main(argv: list[str] | None = None) -> int:
    from trainer.file_io import write_json_atomic

    a = build_parser().parse_args(argv)
    out = Path(a.out)
    for p in (out, Path(a.json) if a.json else None):
        if p is not None and not p.parent.is_dir():
            print(f"error: output folder {p.parent} does not exist", file=sys.stderr)
            return 2
    try:
        net, report = netx_to_network(a.netx_file, a.profile, time_steps=a.time_steps,
                                      input_message_bits=a.input_message_bits)
        netx_h5.save(net, out)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["output_file"] = str(out)
    print(format_report(report))
    if a.json:
        write_json_atomic(report, Path(a.json), sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
