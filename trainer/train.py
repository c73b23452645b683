"""Training: data -> DelaySNN -> RUN_DIR (checkpoint.pt, last.pt, metrics.json, config.json).

Determinism: every random draw derives from the config seed (model init), the (seed, epoch)
pair (shuffling) and the (seed, epoch, step) triple (dropout masks, drawn for the global batch
and sliced per rank), so a run, its resumption and a DDP run with the same global batch agree.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .augment import Augmentation, augment
from .checkpoint import (
    CHECKPOINT,
    CONFIG,
    INIT_CHECKPOINT,
    LAST,
    METRICS,
    RESUME_FORMAT,
    VERSION,
    CheckpointError,
    build_checkpoint,
    load_checkpoint_dict,
    load_resume,
)
from .config import identity, resolve_config
from .cpu_memory import keep_freed_memory
from .distributed import DistInfo, setup, teardown
from .evaluate import accuracy, has_train_kernels
from .file_io import torch_save_atomic, write_json_atomic
from .model import DelaySNN, class_scores, loss_fn, spike_penalty
from .recurrent import recurrent_kernel_size
from .rewiring import (
    disconnected,
    disconnected_recurrent,
    drop_fraction_at,
    drop_smallest,
    is_regrowth_step,
    regrow,
    remove_crossed,
)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict | None        # None when the run stopped early (stop_after_epoch)
    checkpoint: Path
    completed: bool


def _mix(*ints: int) -> int:
    """A 63-bit seed from a tuple of non-negative ints (stable across runs and platforms)."""
    h = 1469598103934665603
    for i in ints:
        h = ((h ^ (int(i) + 0x9E3779B9)) * 1099511628211) % (1 << 63)
    return h


def sigma_at(step: int, total_steps: int, cfg: dict) -> float:
    """DCLS sigma parameter at a global step: K/2 decaying geometrically to sigma_final at
    sigma_decay_fraction of training, then linearly to sigma_end at the last step (so the
    trained Gaussian kernels end close to the one-hot kernels of integer delays)."""
    s0, s1, s2 = cfg["kernel_size"] / 2, cfg["sigma_final"], cfg["sigma_end"]
    n = max(1, round(cfg["sigma_decay_fraction"] * total_steps))
    if step < n:
        return s0 * (s1 / s0) ** (step / n)
    rest = max(1, total_steps - 1 - n)
    return s1 + (s2 - s1) * min(1.0, (step - n) / rest)


def _config_diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k))


def prepare_run_dir(run_dir: Path, cfg: dict, resume: bool) -> dict | None:
    """Check RUN_DIR before any work; return the resume state (last.pt) or None.
    Raises ValueError / CheckpointError without touching any file."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"RUN_DIR {run_dir} exists and is not a folder")
    present = [f for f in (CHECKPOINT, LAST, METRICS, CONFIG) if (run_dir / f).exists()]
    stored = None
    if (run_dir / CONFIG).exists():
        try:
            stored = json.loads((run_dir / CONFIG).read_text())["config"]
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{run_dir / CONFIG} is corrupt ({e}); delete RUN_DIR or use "
                                  f"another --out") from None
    if not resume:
        if present:
            if stored is not None and identity(stored) != identity(cfg):
                raise ValueError(f"RUN_DIR {run_dir} holds another run (config differs: "
                                 f"{_config_diff(identity(stored), identity(cfg))}); choose "
                                 f"another --out or delete that folder")
            raise ValueError(f"RUN_DIR {run_dir} already holds a run; pass --resume to continue "
                             f"it, or choose another --out")
        return None
    if not present:
        raise ValueError(f"--resume: RUN_DIR {run_dir} holds no run to resume; run without "
                         f"--resume to start one")
    if stored is not None and identity(stored) != identity(cfg):
        raise ValueError(f"--resume: the config differs from the run in {run_dir} "
                         f"({_config_diff(identity(stored), identity(cfg))}); resume with the "
                         f"same config")
    if not (run_dir / LAST).exists():
        if (run_dir / CHECKPOINT).exists() or (run_dir / METRICS).exists():
            raise CheckpointError(f"--resume: {run_dir / LAST} is missing although the run has "
                                  f"results; delete RUN_DIR or use another --out")
        return None              # killed before the first epoch ended: start from scratch
    state = load_resume(run_dir / LAST)
    if identity(state["config"]) != identity(cfg):
        raise ValueError(f"--resume: the config differs from the run in {run_dir} "
                         f"({_config_diff(identity(state['config']), identity(cfg))})")
    return state


def _load_data(cfg: dict):
    from trainer.data import load_dataset
    kw = dict(seed=cfg["seed"], n_mels=cfg["n_mels"], time_steps=cfg["time_steps"],
              val_fraction=cfg["val_fraction"], **cfg["data_options"])
    if cfg["frontend_norm"] != "none":
        kw["frontend_options"] = {"norm": cfg["frontend_norm"]}
    data_dir = cfg["data_dir"] or None
    return tuple(load_dataset(cfg["dataset"], split, data_dir, **kw)
                 for split in ("train", "val", "test"))


def train(config: dict | str | Path | None = None, *, out: str | Path, resume: bool = False,
          config_file: str | Path | None = None, sets: list[str] | None = None,
          progress: bool = True, stop_after_epoch: int | None = None, on_step=None,
          **overrides) -> RunResult:
    """Train a network and write RUN_DIR = ``out``.

    config: a dict of config keys (see trainer/defaults.toml) or the path of a TOML file;
    overrides: more config keys as keyword arguments (None = keep); sets: "key=value" strings.
    resume: continue the run in ``out`` from last.pt (same config required).
    stop_after_epoch: stop after that many epochs as if killed (for tests of --resume).
    on_step: optional callable(model, epoch, step) after every optimiser step and rewiring.
    Returns RunResult; metrics as written to RUN_DIR/metrics.json.
    """
    if isinstance(config, (str, Path)):
        config_file, config = config, None
    cfg = resolve_config(config_file, {**(config or {}), **overrides}, sets)
    run_dir = Path(out)
    state = prepare_run_dir(run_dir, cfg, resume)
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")
    threads = torch.get_num_threads()
    info, device = setup(cfg["device"])
    if cfg["num_threads"] > 0:
        torch.set_num_threads(cfg["num_threads"])
    # Gaussian kernel tails: 4x slower as denormals. The flag is process-wide and breaks other
    # code (scipy's cKDTree segfaults under it), so it is switched off again on the way out.
    torch.set_flush_denormal(True)
    try:
        return _train(cfg, run_dir, state, info, device, progress, stop_after_epoch, on_step)
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)
        teardown(info)


# rewire_interval = 0 (auto) on sparse-path layers: their dense candidate gradient, which costs
# as much as a dense layer's weight gradient, is then computed on 1 step in 10. Dense-kernel
# layers get it free with every backward pass, so they keep the reference's every-step rule.
SPARSE_PATH_INTERVAL = 10


@dataclass
class RewireSchedule:
    """DEEP R + RigL settings of a run (trainer.rewiring; keys of trainer/defaults.toml)."""
    total_steps: int
    interval: int = 1              # rewire_interval: RigL regrowth by score every N steps;
                                   # 0 = auto: 1 on dense-kernel layers, SPARSE_PATH_INTERVAL
                                   # on sparse-path layers
    drop_fraction: float = 0.0     # rigl_drop_fraction (cosine-decayed)
    stop_fraction: float = 1.0     # rigl_stop_fraction
    regrow: str = "gradient"       # gradient | random
    temperature: float = 0.0       # deepr_temperature
    drop_disconnected: bool = False  # drop_disconnected (on regrowth-by-score steps)
    seed: int = 0
    world: int = 1                 # DDP processes (candidate gradients are averaged)

    @classmethod
    def from_config(cls, cfg: dict, total_steps: int, world: int = 1) -> "RewireSchedule":
        return cls(total_steps, cfg["rewire_interval"], cfg["rigl_drop_fraction"],
                   cfg["rigl_stop_fraction"], cfg["regrow"], cfg["deepr_temperature"],
                   cfg["drop_disconnected"], cfg["seed"], world)

    def layer_interval(self, layer) -> int:
        """Steps between regrowths by score for one layer (resolves interval 0 = auto)."""
        if self.interval > 0:
            return self.interval
        return SPARSE_PATH_INTERVAL if layer.sparse_path else 1

    def regrowth_step(self, step: int, layer) -> bool:
        return is_regrowth_step(step, self.total_steps, self.layer_interval(layer),
                                self.stop_fraction)


def optimisation_step(model, net, xb, yb, masks, loss_scale: float, l1: float, opt_w, opt_p,
                      sparse, clamp_only, spike_reg: float = 0.0, spike_target: float = 0.0,
                      schedule: RewireSchedule | None = None, step: int = 0):
    """One step: forward with training kernels, loss (sum over the local batch times
    ``loss_scale``, so DDP's gradient average equals the global-batch mean), backward, Adam
    steps, position clamping, DEEP R + RigL rewiring of the sparse layers (``sparse``) at
    global step ``step`` under ``schedule`` (None: the reference rule after every step) and
    magnitude clamping of sign-constrained dense ones (``clamp_only``).
    ``spike_reg`` weighs model.spike_penalty (hidden firing rates above ``spike_target``).
    Returns (readout membrane, scaled data loss, regrown connections per sparse layer).
    The first call sets the process's CPU allocator to keep freed memory
    (trainer.cpu_memory: the step's large tensors stop page-faulting; same results)."""
    keep_freed_memory()
    schedule = schedule or RewireSchedule(total_steps=step + 1)
    by_score = [schedule.regrowth_step(step, c) for c in sparse]
    need_grad = [b and schedule.regrow == "gradient" for b in by_score]
    for c, want in zip(sparse, need_grad):
        c.want_candidate_grad(want)
    if spike_reg > 0:
        v, spikes = net(xb, hard=False, dropout_masks=masks, return_spikes=True)
    else:
        v = net(xb, hard=False, dropout_masks=masks)
    data_loss = loss_fn(v, yb, reduction="sum") * loss_scale
    loss = data_loss + l1 * model.l1() if l1 > 0 else data_loss
    if spike_reg > 0:
        loss = loss + spike_reg * spike_penalty(spikes, spike_target).sum() * loss_scale
    opt_w.zero_grad(set_to_none=True)
    if opt_p is not None:
        opt_p.zero_grad(set_to_none=True)
    loss.backward()
    cand = []
    for c, want in zip(sparse, need_grad):    # RigL score: gradient at every candidate
        g = c.candidate_grad() if want else None
        if g is not None and c.sparse_path and schedule.world > 1:
            import torch.distributed as dist  # theta.grad is averaged by DDP; this too
            dist.all_reduce(g)
            g /= schedule.world
        cand.append(g)
        c.theta.grad.mul_(c.mask)    # unconnected entries do not move
    opt_w.step()
    if opt_p is not None:
        opt_p.step()
    model.clamp_positions()
    regrown_counts = []
    dead: list[torch.Tensor] | None = None
    if schedule.drop_disconnected and any(by_score):   # from the masks before this rewiring
        where = {id(c): j for j, c in enumerate(model.synapse_layers())}
        if model.recurrent is None:
            dead_all = disconnected([c.mask for c in model.connections])
        else:
            dead_all = disconnected_recurrent([c.mask for c in model.connections],
                                              [r.mask for r in model.recurrent])
        dead = [dead_all[where[id(c)]] for c in sparse]
    for i, (c, g) in enumerate(zip(sparse, cand)):
        gen = torch.Generator().manual_seed(_mix(schedule.seed, step, i))
        theta, mask = c.theta.data, c.mask
        if schedule.temperature > 0:          # DEEP R noise on existing connections
            lr = next(g["lr"] for g in opt_w.param_groups
                      if any(q is c.theta for q in g["params"]))
            noise = torch.randn(int(mask.sum()), generator=gen, dtype=theta.dtype)
            theta.view(-1)[torch.nonzero(mask.view(-1)).view(-1)] += (
                math.sqrt(2 * lr * schedule.temperature) * noise.to(theta.device))
        removed = remove_crossed(theta, mask)
        n = int(removed.sum())
        if by_score[i]:
            frac = drop_fraction_at(step, schedule.total_steps, schedule.drop_fraction,
                                    schedule.stop_fraction)
            dropped = drop_smallest(theta, mask, round(frac * int(mask.sum())))
            if dead is not None:
                flat = mask.view(-1)
                d = dead[i] & flat
                flat &= ~d
                theta.view(-1).mul_(flat)
                dropped |= d
            n += int(dropped.sum())
            removed |= dropped
            score = -g if g is not None else None
        else:
            score = None
        regrown = regrow(theta, mask, n, removed, score, gen)
        regrown_counts.append(len(regrown))
        st = opt_w.state.get(c.theta)
        if st and len(regrown):      # a regrown synapse starts with fresh Adam moments
            for key in ("exp_avg", "exp_avg_sq"):
                st[key].view(-1)[regrown] = 0
    for c in clamp_only:
        c.theta.data.clamp_(min=0)
    return v, data_loss, regrown_counts


def weight_groups(model, weights: list) -> list[tuple[float, list]]:
    """Adam parameter groups [(lr factor, params)]: each connection's weight with its layer's
    ``lr_scale`` (layers.DelayConnection), everything else at 1; one group (factor 1, the
    parameters in model order) when no layer is scaled."""
    scale = {}
    for c in model.synapse_layers():
        for p in c.parameters(recurse=False):
            scale[id(p)] = c.lr_scale
    factors = sorted({scale.get(id(p), 1.0) for p in weights}, reverse=True)
    return [(k, [p for p in weights if scale.get(id(p), 1.0) == k]) for k in factors]


def _train(cfg, run_dir, state, info: DistInfo, device, progress, stop_after_epoch,
           on_step) -> RunResult:
    train_ds, val_ds, test_ds = _load_data(cfg)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / CONFIG).exists():
            write_json_atomic({"config": cfg}, run_dir / CONFIG, sort_keys=True)
    recipe = train_ds.recipe
    n_in, n_classes = train_ds.x.shape[2], len(train_ds.class_names)
    model = DelaySNN(n_in, n_classes, cfg).to(device)

    pos = model.positions()
    pos_ids = {id(p) for p in pos}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in pos_ids]
    n_train, gb = len(train_ds), cfg["batch_size"]
    steps_per_epoch = math.ceil(n_train / gb)
    total_steps = cfg["epochs"] * steps_per_epoch
    groups = weight_groups(model, weights)
    opt_w = torch.optim.Adam([{"params": ps, "lr": cfg["lr"] * k} for k, ps in groups],
                             lr=cfg["lr"])
    sched_w = torch.optim.lr_scheduler.OneCycleLR(
        opt_w, max_lr=[cfg["max_lr"] * k for k, _ in groups], total_steps=total_steps,
        div_factor=cfg["max_lr"] / cfg["lr"])
    opt_p = torch.optim.Adam(pos, lr=cfg["lr_positions"]) if pos else None  # type: ignore[arg-type]
    sched_p = (torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=total_steps)  # type: ignore[arg-type]
               if pos else None)

    history, best, seconds, start_epoch = [], {"epoch": 0, "val_accuracy": -1.0}, 0.0, 0
    if state is None and info.is_main:  # the network before any training or rewiring
        torch_save_atomic(build_checkpoint(model, cfg, train_ds.class_names, recipe, 0,
                                           float("nan")), run_dir / INIT_CHECKPOINT)
    if state is not None:
        model.load_state_dict(state["model_state"])
        opt_w.load_state_dict(state["optimizers"]["w"])
        sched_w.load_state_dict(state["schedulers"]["w"])
        if opt_p is not None:
            opt_p.load_state_dict(state["optimizers"]["p"])
            sched_p.load_state_dict(state["schedulers"]["p"])  # type: ignore[union-attr]
        torch.set_rng_state(state["rng"])
        history, best = list(state["history"]), dict(state["best"])
        seconds, start_epoch = float(state["seconds"]), int(state["epoch"])

    net: torch.nn.Module = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    sparse = [c for c in model.synapse_layers() if c.sparse]
    clamp_only = [c for c in model.synapse_layers() if not c.signed and not c.sparse]
    rec_cfg = {**cfg, "kernel_size": recurrent_kernel_size(cfg)}   # recurrent sigma schedule
    schedule = RewireSchedule.from_config(cfg, total_steps, info.world)

    x_train, y_train = train_ds.x, train_ds.y
    aug = Augmentation.from_config(cfg)
    if aug.vtlp:          # the Mel axis it warps, from the data's front end
        from trainer.data.frontend import mel_axis_hz
        band_hz, f_max = mel_axis_hz(recipe["frontend"])
        aug = Augmentation.from_config(cfg, band_hz, f_max)
    for epoch in range(start_epoch, cfg["epochs"]):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n_train, generator=torch.Generator().manual_seed(
            _mix(cfg["seed"], epoch)))
        totals = torch.zeros(3, dtype=torch.float64)   # loss sum, correct, samples (this rank)
        regrown_epoch = [0] * len(sparse)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg['epochs']}",
                   leave=False, disable=not (progress and info.is_main), unit="batch")
        for step in bar:
            gstep = epoch * steps_per_epoch + step
            model.set_sigma(sigma_at(gstep, total_steps, cfg))
            if model.recurrent is not None:
                model.set_recurrent_sigma(sigma_at(gstep, total_steps, rec_cfg))
            idx = order[step * gb:(step + 1) * gb]
            parts = torch.tensor_split(torch.arange(len(idx)), info.world)
            mine = parts[info.rank]
            xb_all = x_train[idx]
            if aug.enabled:   # drawn for the global batch, sliced per rank (as dropout masks)
                xb_all = augment(xb_all, aug, torch.Generator().manual_seed(
                    _mix(cfg["seed"], epoch, step, 1)))
            xb, yb = xb_all[mine].to(device), y_train[idx[mine]].to(device)
            masks = model.dropout_masks(len(idx), torch.Generator().manual_seed(
                _mix(cfg["seed"], epoch, step)), "cpu")
            if masks is not None:
                masks = [m[mine].to(device) for m in masks]
            v, data_loss, regrown = optimisation_step(
                model, net, xb, yb, masks, info.world / len(idx), cfg["l1"], opt_w, opt_p, sparse,
                clamp_only, cfg["spike_reg"], cfg["spike_target"], schedule=schedule,
                step=gstep)
            regrown_epoch = [a + b for a, b in zip(regrown_epoch, regrown)]
            sched_w.step()
            if sched_p is not None:
                sched_p.step()
            if on_step is not None:
                on_step(model, epoch, step)
            with torch.no_grad():
                pred = class_scores(v).argmax(1)
                totals += torch.tensor([data_loss.item() * len(idx) / info.world,
                                        float((pred == yb).sum()), len(yb)],
                                       dtype=torch.float64)
        bar.close()
        if info.enabled:
            import torch.distributed as dist
            dist.all_reduce(totals)
        train_seconds = time.perf_counter() - t0
        seconds += train_seconds
        if info.is_main:
            val = accuracy(model, val_ds.x, val_ds.y, hard=True, device=device)
            entry = {"epoch": epoch + 1, "loss": float(totals[0] / totals[2]),
                     "train_accuracy": float(totals[1] / totals[2]), "val_accuracy": val,
                     "connections": model.connection_counts(), "regrown": regrown_epoch,
                     "sigma": float(sigma_at((epoch + 1) * steps_per_epoch - 1, total_steps, cfg)),
                     "seconds": train_seconds}
            if model.recurrent is not None:
                entry["recurrent_connections"] = model.recurrent_connection_counts()
            history.append(entry)
            if val > best["val_accuracy"]:
                best = {"epoch": epoch + 1, "val_accuracy": val}
                torch_save_atomic(build_checkpoint(model, cfg, train_ds.class_names, recipe,
                                                   epoch + 1, val), run_dir / CHECKPOINT)
            torch_save_atomic({
                "format": RESUME_FORMAT, "version": VERSION, "config": cfg, "epoch": epoch + 1,
                "model_state": model.state_dict(),
                "optimizers": {"w": opt_w.state_dict(),
                               "p": opt_p.state_dict() if opt_p else None},
                "schedulers": {"w": sched_w.state_dict(),
                               "p": sched_p.state_dict() if sched_p else None},
                "history": history, "best": best, "seconds": seconds,
                "rng": torch.get_rng_state()}, run_dir / LAST)
            tqdm.write(f"epoch {epoch + 1}/{cfg['epochs']}: loss {entry['loss']:.4f} "
                       f"train {entry['train_accuracy']:.1%} val {val:.1%} connections "
                       f"{entry['connections']} sigma {entry['sigma']:.2f} "
                       f"({train_seconds:.1f} s)")
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch \
                and epoch + 1 < cfg["epochs"]:
            return RunResult(run_dir, None, run_dir / CHECKPOINT, completed=False)

    metrics = None
    if info.is_main:
        metrics = _finish(cfg, run_dir, history, best, seconds, test_ds, device)
    if info.enabled:
        import torch.distributed as dist
        dist.barrier()
        if not info.is_main:
            metrics = json.loads((run_dir / METRICS).read_text())
    return RunResult(run_dir, metrics, run_dir / CHECKPOINT, completed=True)


def _finish(cfg, run_dir, history, best, seconds, test_ds, device) -> dict:
    """Evaluate the best checkpoint on the test split and write metrics.json."""
    from .evaluate import model_from_checkpoint
    from .lif_kernel import used as lif_kernel_used
    ckpt = load_checkpoint_dict(run_dir / CHECKPOINT)
    model = model_from_checkpoint(ckpt, device)
    test_hard = accuracy(model, test_ds.x, test_ds.y, hard=True)
    test_soft = (accuracy(model, test_ds.x, test_ds.y, hard=False)
                 if has_train_kernels(cfg) else test_hard)
    metrics = {
        "history": history, "best_epoch": best["epoch"], "val_accuracy": best["val_accuracy"],
        "test_accuracy": test_hard, "test_accuracy_train_kernels": test_soft,
        "connections": model.connection_counts(), "sparsity": cfg["sparsity"],
        "method": cfg["method"], "seed": cfg["seed"], "epochs": cfg["epochs"],
        "dataset": cfg["dataset"], "seconds": seconds, "n_test": len(test_ds),
        "lif_kernel": lif_kernel_used(cfg["lif_kernel"], device),
    }
    if model.recurrent is not None:
        metrics["recurrent_connections"] = model.recurrent_connection_counts()
    write_json_atomic(metrics, run_dir / METRICS, sort_keys=True)
    tqdm.write(f"best epoch {best['epoch']}: val {best['val_accuracy']:.2%}; test "
               f"{test_hard:.2%} (integer delays), {test_soft:.2%} (training kernels)")
    return metrics
