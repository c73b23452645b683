"""The export's accuracy check names itself on its progress bar (issue 23: it said "emulate")."""
from __future__ import annotations

import numpy as np

from deployed.synthetic import random_network
from export.build_network import fixed_point_predictions


def test_accuracy_check_bar_says_what_it_does(capsys):
    net = random_network((6, 8, 3), time_steps=10, max_delay=3, density=0.5, seed=4)
    x = np.random.default_rng(0).random((3, 10, 6)).astype(np.float32)
    pred, check = fixed_point_predictions(net, x, progress=True)
    err = capsys.readouterr().err
    assert pred.shape == (3,) and "accuracy check (fixed point, emulator)" in err, err
