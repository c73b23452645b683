"""The spike-count regulariser (model.spike_penalty, config spike_reg / spike_target) lowers
hidden spike counts: the same run with and without it, fixed seeds, on the timing task of
test_trainer_methods (tau 2, offsets up to 17 steps)."""
import torch

import trainer
from trainer.checkpoint import load_checkpoint_dict
from trainer.data import load_dataset
from trainer.evaluate import model_from_checkpoint
from trainer.model import spike_penalty

DATA = {"n_train": 300, "n_test": 100, "n_classes": 5, "data_seed": 79}
TASK = {"dataset": "synthetic", "method": "dcls", "n_mels": 10, "hidden": [16], "tau": 2.0,
        "epochs": 10, "batch_size": 32, "num_threads": 1, "data_options": DATA}


def test_penalty_is_zero_at_or_below_the_target_and_quadratic_above():
    s = [torch.zeros(2, 4, 10), torch.ones(2, 3, 10)]
    s[0][0, :, :5] = 1                                   # rate 0.5 on sample 0, 0 on sample 1
    torch.testing.assert_close(spike_penalty(s, 0.0), torch.tensor([1.25, 1.0]))
    torch.testing.assert_close(spike_penalty(s, 0.5), torch.tensor([0.25, 0.25]))
    torch.testing.assert_close(spike_penalty(s, 1.0), torch.tensor([0.0, 0.0]))


def test_regulariser_lowers_hidden_spike_counts(tmp_path):
    test = load_dataset("synthetic", "test", n_mels=10, **DATA)
    rates = {}
    for reg in (0.0, 500.0):
        out = tmp_path / f"reg{reg:g}"
        trainer.train({**TASK, "spike_reg": reg}, out=out, progress=False)
        model = model_from_checkpoint(load_checkpoint_dict(out / "checkpoint.pt"), "cpu")
        with torch.no_grad():
            _, spikes = model(test.x, hard=True, return_spikes=True)
        rates[reg] = float(spikes[0].mean())
    assert rates[0.0] > 0.01, rates                      # the baseline does spike
    assert rates[500.0] < 0.7 * rates[0.0], rates
