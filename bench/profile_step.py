"""Where one training step's time goes: torch.profiler over trainer.train.optimisation_step.

Same setup as bench/train_speed.py (40 -> 256 -> 10, K = 25, 100 steps per sample, random input,
dropout as in the bench: 0), default method ``structure`` at sparsity 0.9, batch 256, 1 thread.
After --warmup steps, --steps consecutive global steps are profiled (the default 10 include one
RigL regrowth step of the sparse path's 1-in-10 schedule, so its dense candidate gradient is
counted once in 10, as in training).

Every op's self CPU time goes to a stage: forward ops to the module or function they run in
(delay layer: the hidden layers' connections; readout: the last connection and the leaky
integrator; batchnorm; lif, or "batchnorm + lif (compiled)" where trainer.lif_kernel runs them
as one pass; dropout and layout glue: the model's own ops; loss); backward
ops, through the autograd sequence number of the node that runs them, to the forward stage
that recorded that node (``... bwd``); then optimizer (Adam step, zero_grad, gradient
accumulation) and rewiring (DEEP R / RigL, candidate-gradient readout). ``delay plan`` is the
synapse index rebuild after rewiring changed the mask; ``delay kernel construction`` the
dense-kernel path's (n_out, n_in, K) kernel (DCLS: its Gaussian kernels), whose conv1d stays
in the layer's own stage; ``RigL candidate gradient (sparse path)`` the dense gradient at every
candidate that the sparse path computes on regrowth steps (the dense path gets it with its
weight gradient). Prints ms per step per stage with its share, and the top ops by self time.

    python bench/profile_step.py [--method structure] [--sparsity 0.9] [--batch 256]
        [--steps 10] [--first-step 1] [--warmup 2] [--threads 1] [--dropout 0] [--top 15]
        [--sigma 1.0] [--dcls-path auto|dense] [--lif-kernel auto|cpp|torch] [--json OUT.json]
        [--note TEXT]

--json writes {"setup" (with --note, e.g. the code version), "ms_per_step",
"stages": [{"stage", "ms_per_step", "share"}],
"top_ops": [{"op", "self_ms_per_step", "calls_per_step", "share"}]}.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BWD_PREFIX = "autograd::engine::evaluate_function: "
TAG = "stage:"


def _labelled(fn, label):
    import torch

    def wrapper(*a, **kw):
        with torch.profiler.record_function(TAG + label):
            return fn(*a, **kw)
    return wrapper


def _label_modules(model) -> list:
    """Forward hooks that open a profiler range per module; returns the hook handles."""
    import torch
    handles = []

    def add(mod, label):
        state = {}

        def pre(m, args):
            rf = torch.profiler.record_function(TAG + label)
            rf.__enter__()
            state.setdefault("open", []).append(rf)

        def post(m, args, out):
            state["open"].pop().__exit__(None, None, None)
        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))

    add(model, "dropout, input and layout glue")    # model ops outside the modules below
    for c in model.connections[:-1]:
        add(c, "delay layer")
    add(model.connections[-1], "readout")
    add(model.readout, "readout")
    for n in model.norms:
        add(n, "batchnorm")
    for lif in model.lifs:
        add(lif, "lif")
    return handles


def attribute(events) -> dict[str, float]:
    """Self CPU time (us) per stage of a list of profiler FunctionEvents (module docstring):
    an op belongs to its innermost labelled range, or, inside a backward node, to the forward
    stage that recorded the node."""
    def resolve(e, fwd_stage):
        while e is not None:
            if e.name.startswith(TAG):
                return e.name[len(TAG):]
            if e.name.startswith("Optimizer."):
                return "optimizer"
            if e.name.startswith(BWD_PREFIX):
                if fwd_stage is None:
                    return None
                if e.name.endswith("torch::autograd::AccumulateGrad"):
                    return "optimizer"
                seq = e.sequence_nr
                if seq < 0:                       # the node's own event carries it
                    seq = next((c.sequence_nr for c in e.cpu_children if c.sequence_nr >= 0), -1)
                return fwd_stage.get(seq, "other") + " bwd"
            e = e.cpu_parent
        return "other"

    fwd_stage: dict[int, str] = {}
    for e in events:                      # forward ops that recorded an autograd node
        if e.sequence_nr >= 0:
            st = resolve(e, None)
            if st is not None and st != "other":
                fwd_stage.setdefault(e.sequence_nr, st)
    totals: dict[str, float] = defaultdict(float)
    for e in events:
        totals[resolve(e, fwd_stage)] += e.self_cpu_time_total
    return dict(totals)


def profile(method: str = "structure", sparsity: float = 0.9, batch: int = 256, steps: int = 10,
            warmup: int = 2, dropout: float = 0.0, top: int = 15, device: str = "cpu",
            first_step: int = 1, sigma: float = 1.0, dcls_path: str | None = None,
            lif_kernel: str | None = None) -> dict:
    """Profile ``steps`` training steps, global steps ``first_step``, ``first_step + 1``, ...
    (after ``warmup`` steps) at DCLS ``sigma`` (trainer config dcls_path, None = its
    default); returns the --json document."""
    import importlib

    import torch
    tt = importlib.import_module("trainer.train")    # the module (trainer.train is also a function)
    from torch.profiler import ProfilerActivity

    from trainer.config import resolve_config
    from trainer.layers import DelayConnection
    from trainer.lif_kernel import used as lif_kernel_used
    from trainer.model import DelaySNN
    torch.set_flush_denormal(True)
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 100, 40, generator=g) * 0.08).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    cfg = resolve_config(overrides={"method": method, "sparsity": sparsity, "dropout": dropout,
                                    "dcls_path": dcls_path, "lif_kernel": lif_kernel})
    model = DelaySNN(40, 10, cfg).to(dev)
    model.set_sigma(sigma)
    pos = [c.dcls.P for c in model.connections if c.method == "dcls"]
    w = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in pos)]
    opt_w = torch.optim.Adam(w, lr=1e-3)
    opt_p = torch.optim.Adam(pos, lr=0.1) if pos else None
    sparse = [c for c in model.connections if c.sparse]
    schedule = tt.RewireSchedule.from_config(cfg, total_steps=10 ** 6)
    gen = torch.Generator().manual_seed(1)

    def step(i):
        masks = model.dropout_masks(batch, gen, dev)
        tt.optimisation_step(model, model, x, y, masks, 1.0 / batch, 0.0, opt_w, opt_p, sparse,
                             [], schedule=schedule, step=i)

    sd = importlib.import_module("trainer.sparse_delay")
    sdc = importlib.import_module("trainer.sparse_dcls")
    tm = importlib.import_module("trainer.model")
    patched_fused = tm.batchnorm_lif
    patched = {name: getattr(tt, name) for name in
               ("loss_fn", "remove_crossed", "drop_smallest", "regrow")}
    patched_sd = sd.candidate_grad
    patched_cls = {name: getattr(DelayConnection, name)
                   for name in ("plan", "dcls_plan", "candidate_grad", "kernel")}
    handles = _label_modules(model)
    try:
        tt.loss_fn = _labelled(patched["loss_fn"], "loss")
        for name in ("remove_crossed", "drop_smallest", "regrow"):
            setattr(tt, name, _labelled(patched[name], "rewiring"))
        DelayConnection.plan = _labelled(patched_cls["plan"], "delay plan")
        DelayConnection.dcls_plan = _labelled(patched_cls["dcls_plan"], "delay plan")
        sd.candidate_grad = _labelled(patched_sd, "RigL candidate gradient (sparse path)")
        sdc.candidate_grad = sd.candidate_grad
        DelayConnection.candidate_grad = _labelled(patched_cls["candidate_grad"], "rewiring")
        DelayConnection.kernel = _labelled(patched_cls["kernel"], "delay kernel construction")
        tm.batchnorm_lif = _labelled(patched_fused, "batchnorm + lif (compiled)")
        for i in range(warmup):
            step(10 ** 5 + i)                 # warm-up, away from the profiled steps
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        t0 = time.perf_counter()
        with torch.profiler.profile(activities=acts) as prof:
            for i in range(first_step, first_step + steps):
                step(i)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
        for name, fn in patched.items():
            setattr(tt, name, fn)
        for name, fn in patched_cls.items():
            setattr(DelayConnection, name, fn)
        sd.candidate_grad = sdc.candidate_grad = patched_sd
        tm.batchnorm_lif = patched_fused
    events = list(prof.events())
    stages = attribute(events)
    total = sum(stages.values())
    per_op: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for e in events:
        if not e.name.startswith(TAG):
            per_op[e.name][0] += e.self_cpu_time_total
            per_op[e.name][1] += 1
    ops = sorted(per_op.items(), key=lambda kv: -kv[1][0])[:top]
    return {
        "setup": {"method": method, "sparsity": sparsity, "batch_size": batch,
                  "shape": "40 -> 256 -> 10", "time_steps": 100, "kernel_size": 25,
                  "dropout": dropout, "profiled_steps": steps, "first_step": first_step,
                  "device": device, "sigma": sigma, "dcls_path": cfg["dcls_path"],
                  "lif_kernel": lif_kernel_used(cfg["lif_kernel"], dev),
                  "threads": torch.get_num_threads(),
                  "sparse_path": [bool(c.sparse_path) for c in model.connections],
                  "wall_ms_per_step_profiled": round(wall * 1e3 / steps, 1)},
        "ms_per_step": round(total / 1e3 / steps, 1),
        "stages": [{"stage": s, "ms_per_step": round(v / 1e3 / steps, 2),
                    "share": round(v / total, 3)}
                   for s, v in sorted(stages.items(), key=lambda kv: -kv[1])],
        "top_ops": [{"op": n, "self_ms_per_step": round(v / 1e3 / steps, 2),
                     "calls_per_step": round(c / steps, 1), "share": round(v / total, 3)}
                    for n, (v, c) in ops],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="structure",
                   choices=["dcls", "structure", "structure-multi", "no-delay"])
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10, help="profiled training steps")
    p.add_argument("--first-step", type=int, default=1,
                   help="global step of the first profiled step (RigL regrows by score on "
                        "multiples of rewire_interval)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--sigma", type=float, default=1.0,
                   help="DCLS sigma of the profiled steps (default 1.0; the schedule runs from "
                        "K/2 to 0)")
    p.add_argument("--dcls-path", choices=["auto", "dense"], default=None,
                   help="trainer config dcls_path (default: the trainer's, auto)")
    p.add_argument("--lif-kernel", choices=["auto", "cpp", "torch"], default=None,
                   help="trainer config lif_kernel (default: the trainer's)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--top", type=int, default=15, help="ops listed by self time")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="write the result to this JSON file")
    p.add_argument("--note", default="", help="stored in the JSON's setup (e.g. the code version)")
    a = p.parse_args(argv)
    if a.threads < 1 or a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.top < 1 \
            or a.first_step < 0:
        p.error("--threads, --steps, --batch and --top must be >= 1, --warmup and --first-step "
                ">= 0")
    if not 0 <= a.sparsity < 1 or not 0 <= a.dropout < 1:
        p.error("--sparsity and --dropout must be in [0, 1)")
    if a.json and not Path(a.json).parent.is_dir():
        p.error(f"--json: folder {Path(a.json).parent} does not exist")
    import torch
    torch.set_num_threads(a.threads)
    if a.sigma < 0:
        p.error("--sigma must be >= 0")
    doc = profile(a.method, a.sparsity, a.batch, a.steps, a.warmup, a.dropout, a.top, a.device,
                  a.first_step, a.sigma, a.dcls_path, a.lif_kernel)
    if a.note:
        doc["setup"]["note"] = a.note
    s = doc["setup"]
    print(f"{s['method']} sparsity {s['sparsity']} batch {s['batch_size']}, {s['threads']} "
          f"thread(s): {doc['ms_per_step']} ms of op time per step (profiled wall "
          f"{s['wall_ms_per_step_profiled']} ms)")
    print(f"{'stage':40s} {'ms/step':>8s} {'share':>6s}")
    for r in doc["stages"]:
        print(f"{r['stage']:40s} {r['ms_per_step']:8.1f} {r['share']:6.1%}")
    print(f"\n{'op (self time)':40s} {'ms/step':>8s} {'calls':>7s} {'share':>6s}")
    for r in doc["top_ops"]:
        print(f"{r['op'][:40]:40s} {r['self_ms_per_step']:8.1f} {r['calls_per_step']:7.1f} "
              f"{r['share']:6.1%}")
    if a.json:
        from trainer.file_io import write_json_atomic
        write_json_atomic(doc, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
