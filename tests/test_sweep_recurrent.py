"""The recurrence sweep (experiments/fsdd_recurrent.toml, issue 24 item 6): its points carry
``recurrent`` and every recurrent point has exactly the synapse count of its feed-forward twin."""
from pathlib import Path

from experiments.sweep_config import load_grid, plan
from trainer.model import DelaySNN

GRID = Path(__file__).resolve().parents[1] / "experiments" / "fsdd_recurrent.toml"


def test_recurrent_points_have_their_feed_forward_twins_synapse_count():
    points, skipped = plan(load_grid(GRID), seeds=[0])
    assert not skipped and len(points) == 12
    by_name = {p["name"]: p for p in points}
    twins = 0
    for p in points:
        assert p["recurrent"] is p["group"].endswith("-recurrent")
        assert p["config"]["recurrent"] is p["recurrent"]
        if not p["recurrent"]:
            continue
        ff = by_name[p["name"].replace("-recurrent", "")]
        rec_net, ff_net = (DelaySNN(40, 10, q["config"]) for q in (p, ff))
        total = sum(rec_net.connection_counts()) + sum(rec_net.recurrent_connection_counts())
        assert total == sum(ff_net.connection_counts())
        assert sum(rec_net.recurrent_connection_counts()) > 0
        if p["method"] != "no-delay":
            assert rec_net.recurrent[0].K == 63           # recurrent delays up to 62
        twins += 1
    assert twins == 6
