"""Training augmentation (trainer/augment.py): exact transforms, fixed by the seed, train only."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import trainer
import trainer.augment as augment_mod
from trainer.augment import SCALE, TOP_DB, Augmentation, augment
from trainer.data import load_dataset

MAX = TOP_DB * SCALE


def mel_like(b=6, t=40, c=12, seed=0) -> torch.Tensor:
    """Features in the front end's range: a loud stretch over a quiet floor, zero padding at the end."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t, c, generator=g) * 0.3 * MAX
    x[:, 10:25] += 0.6 * MAX
    x[:, -5:] = 0
    return x / x.amax(dim=(1, 2), keepdim=True) * MAX


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_off_is_identity_and_a_seed_fixes_the_draw():
    x = mel_like()
    assert torch.equal(augment(x, Augmentation(), gen(0)), x)
    a = Augmentation(shift=4, speed=0.2, bands=2, noise_db=20)
    assert torch.equal(augment(x, a, gen(3)), augment(x, a, gen(3)))
    assert not torch.equal(augment(x, a, gen(3)), augment(x, a, gen(4)))


def test_time_shift_is_an_exact_shift_with_zero_fill():
    x = mel_like(b=32)
    y = augment(x, Augmentation(shift=3), gen(1))
    shifts = set()
    for xb, yb in zip(x, y):
        s = next(s for s in range(-3, 4)
                 if torch.equal(yb, torch.roll(xb, s, 0).index_fill(
                     0, torch.arange(0, s) if s >= 0 else torch.arange(len(xb) + s, len(xb)), 0.0)))
        shifts.add(s)
    assert len(shifts) > 3          # the draw spreads over the range


def test_band_shift_and_speed_keep_shape_and_range():
    x = mel_like(b=16)
    yb = augment(x, Augmentation(bands=1), gen(2))
    kinds = set()
    for xi, yi in zip(x, yb):
        up = torch.equal(yi[:, 1:], xi[:, :-1]) and bool((yi[:, 0] == 0).all())
        down = torch.equal(yi[:, :-1], xi[:, 1:]) and bool((yi[:, -1] == 0).all())
        assert up or down or torch.equal(yi, xi)
        kinds.add((up, down))
    assert len(kinds) > 1
    ys = augment(x, Augmentation(speed=0.3), gen(2))
    assert ys.shape == x.shape and float(ys.min()) >= 0 and float(ys.max()) <= MAX + 1e-6
    assert not torch.equal(ys, x)


def test_noise_from_silence_keeps_the_front_ends_scale():
    x = mel_like(b=8)
    y = augment(x, Augmentation(noise_db=10), gen(5))
    assert float(y.min()) >= 0
    torch.testing.assert_close(y.amax(dim=(1, 2)), torch.full((8,), MAX), rtol=0, atol=1e-6)
    # noise adds power: quiet parts get louder relative to the peak, never quieter than the floor
    quiet = x < 0.2 * MAX
    assert float((y[quiet] - x[quiet]).mean()) > 0


def test_training_augments_train_batches_only(tmp_path, monkeypatch):
    """Every batch the trainer augments is made of training rows; validation is not augmented
    (the validation accuracy in metrics equals evaluating the checkpoint on plain data)."""
    cfg = {"dataset": "synthetic", "method": "structure", "sparsity": 0.5, "hidden": [16],
           "kernel_size": 9, "epochs": 2, "batch_size": 32, "num_threads": 1, "n_mels": 16,
           "time_steps": 30, "data_options": {"n_classes": 4, "n_train": 96, "n_test": 32},
           "augment_shift": 2, "augment_speed": 0.1}
    seen = []
    real = augment_mod.augment

    def spy(x, aug, g):
        seen.append(x.clone())
        return real(x, aug, g)

    monkeypatch.setattr(sys.modules["trainer.train"], "augment", spy)
    result = trainer.train(cfg, out=tmp_path / "run", progress=False)
    train_ds = load_dataset("synthetic", "train", n_mels=16, time_steps=30, n_classes=4,
                            n_train=96, n_test=32)
    rows = {tuple(r.flatten().tolist()) for r in train_ds.x}
    assert seen and all(tuple(r.flatten().tolist()) in rows for b in seen for r in b)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    val = trainer.evaluate(tmp_path / "run", split="val")
    assert val["accuracy"] == pytest.approx(metrics["val_accuracy"])
    assert result.completed


def test_bad_ranges_are_refused_before_work(tmp_path):
    with pytest.raises(ValueError, match="augment"):
        trainer.train({"augment_speed": 1.5}, out=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def fsdd_axis():
    from trainer.data.frontend import mel_axis_hz
    from trainer.data.fsdd import mel_recipe
    return mel_axis_hz(mel_recipe(12, 40))


def test_vtlp_warps_the_mel_axis_by_the_drawn_factor():
    """W(f) = a f below the knee: output band c takes the input at f_c / a, so for a > 1 a
    formant moves up the axis; a = 1 is the identity; the top of the axis stays put."""
    from trainer.augment import vtlp_positions
    band_hz, f_max = fsdd_axis()
    pos = vtlp_positions(np.array([1.0, 1.1, 0.9]), band_hz, f_max)
    np.testing.assert_allclose(pos[0], np.arange(12), atol=1e-12)
    low = band_hz < 0.6 * f_max * 0.9                                  # below both knees
    for row, a in ((pos[1], 1.1), (pos[2], 0.9)):
        src = np.interp(row[low], np.arange(12), band_hz)
        np.testing.assert_allclose(src, np.maximum(band_hz[low] / a, band_hz[0]), rtol=1e-9)
    assert (pos[1][1:] < np.arange(1, 12)).all() and (pos[2][:-1] > np.arange(11)).all()
    x = torch.zeros(1, 5, 12)
    x[0, :, 4] = MAX                                                   # one band lit
    aug = Augmentation(vtlp=0.2, band_hz=tuple(band_hz), f_max_hz=f_max)
    outs = [augment(x, aug, gen(s)) for s in range(8)]
    assert all(o.shape == x.shape for o in outs)
    centres = {round(float((o[0, 0] * torch.arange(12)).sum() / o[0, 0].sum()), 2) for o in outs}
    assert len(centres) > 4 and min(centres) < 4 < max(centres)       # moved both ways
    assert torch.equal(augment(x, aug, gen(3)), augment(x, aug, gen(3)))
    with pytest.raises(ValueError, match="augment_vtlp needs the centre frequencies"):
        augment(x, Augmentation(vtlp=0.1), gen(0))


def test_specaugment_masks_zero_bounded_stretches_and_leave_the_rest():
    x = mel_like(b=32) + 1e-4                                          # no zeros of its own
    y = augment(x, Augmentation(time_mask=6, freq_mask=3, masks=2), gen(4))
    widths_t, widths_f = set(), set()
    for xi, yi in zip(x, y):
        zero = yi == 0
        rows, cols = zero.all(dim=1), zero.all(dim=0)                  # masked steps / bands
        assert torch.equal(zero, rows[:, None] | cols[None, :])        # only whole masks
        assert torch.equal(yi[~zero], xi[~zero])
        widths_t.add(int(rows.sum()))
        widths_f.add(int(cols.sum()))
    assert max(widths_t) <= 12 and max(widths_f) <= 6                  # 2 masks each
    assert len(widths_t) > 3 and len(widths_f) > 2
    assert torch.equal(y, augment(x, Augmentation(time_mask=6, freq_mask=3, masks=2), gen(4)))


def test_new_levers_leave_the_older_draws_unchanged():
    """VTLP and masks draw after the first four, so a config that adds them augments the same
    samples the same way wherever they leave a value unmasked."""
    x = mel_like(b=16) + 1e-4
    old = augment(x, Augmentation(shift=3, bands=1), gen(9))
    new = augment(x, Augmentation(shift=3, bands=1, freq_mask=2), gen(9))
    kept = new != 0
    assert torch.equal(new[kept], old[kept]) and not torch.equal(new, old)


def test_vtlp_and_norm_need_an_audio_front_end(tmp_path):
    with pytest.raises(ValueError, match="augment_vtlp needs Mel features"):
        trainer.train({"augment_vtlp": 0.1}, out=tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="augment_vtlp < 0.5"):
        trainer.train({"dataset": "fsdd", "augment_vtlp": 0.6}, out=tmp_path / "x",
                      progress=False)
    assert not (tmp_path / "x").exists()
