"""The sweep report's before/after section of the fidelity bound (experiments.fidelity_gaps)."""
from __future__ import annotations

from experiments import fidelity_gaps as fg


def _rec(name, test, emu, emu_as_exported, val_after, val_before, within=True, step="scale search"):
    return {"name": name, "group": name.split("_")[0], "sparsity": 0.9, "seed": 0,
            "test_accuracy": test, "emulator_accuracy": emu,
            "emulator_accuracy_as_exported": emu_as_exported,
            "fixed_point_loss_val": val_after, "fixed_point_loss_val_as_exported": val_before,
            "export": {"fidelity": {"step": step}}, "qat_epochs": 0,
            "within_max_loss_bound": within, "max_loss_bound": 0.5, "synapses_zeroed": [3, 1]}


def test_gaps_before_and_after_are_counted_per_split_and_the_targets_named():
    committed = [{"name": "a_s0.9_seed0", "test_accuracy": 0.96, "emulator_accuracy": 0.90},
                 {"name": "b_s0.9_seed0", "test_accuracy": 0.95, "emulator_accuracy": 0.95}]
    bounded = [_rec("a_s0.9_seed0", 0.96, 0.95, 0.90, 0.33, 3.33),
               _rec("b_s0.9_seed0", 0.95, 0.93, 0.93, 0.9, 0.9, within=False, step="qat")]
    s = fg.summarize(committed, bounded)
    assert s["committed_test"]["n"] == 2 and s["committed_test"]["above"][2.0] == 1
    assert s["val_before"]["above"][0.5] == 2 and s["val_after"]["above"][0.5] == 1
    assert round(s["test_before"]["max"], 6) == 6.0 and round(s["test_after"]["max"], 6) == 2.0
    md = "\n".join(fg.markdown(s, "R", "B", "B", "gap.png", 3))
    assert "Re-exported: 2 of 3 grid points" in md and "resumes them" in md
    assert "missed by 1: b_s0.9_seed0 (+0.90)" in md          # validation target
    assert "missed by 1: b_s0.9_seed0 (+2.00)" in md          # test target (a: +1.00 is within)
    assert md.count("| [") == 2 and "(B/a_s0.9_seed0.json)" in md
    assert fg.plot(s)[:8] == b"\x89PNG\r\n\x1a\n"


def test_points_without_the_unbounded_export_count_only_where_known():
    r = _rec("a_s0.9_seed0", 0.9, 0.9, None, 0.0, None)
    s = fg.summarize([], [r])
    assert s["val_before"] is None and s["test_before"] is None and s["val_after"]["n"] == 1
    assert "| validation, before the bound | 0 |" in "\n".join(fg.markdown(s, "R", "B", "B", "g",
                                                                                1))


def test_the_remedy_column_names_the_neuron_exponents_kept_from_step_one():
    assert fg.remedy({"step": "scale search", "neuron_exponents": True}) == \
        "neuron exponents + scale search"
    assert fg.remedy({"step": "neuron exponents", "neuron_exponents": True}) == \
        "neuron exponents"
    assert fg.remedy({"step": "scale search"}) == "scale search"  # points from before step 1


def test_agreement_lines_count_what_chance_alone_gives():
    """With experiments.fidelity_agreement's JSON: the expected number of points over the test
    target under the sign test, the observed one, and the totals of turned answers; a point
    measured on another network (its test gap differs) is left out."""
    from experiments.fidelity_agreement import split_counts, tail_over

    committed = [{"name": n, "test_accuracy": 0.9, "emulator_accuracy": 0.9}
                 for n in ("a_s0.9_seed0", "b_s0.9_seed0", "c_s0.9_seed0")]
    bounded = [_rec("a_s0.9_seed0", 0.9, 0.88, 0.88, 0.0, 0.0),     # test gap 2 points
               _rec("b_s0.9_seed0", 0.9, 0.9, 0.9, 0.0, 0.0),
               _rec("c_s0.9_seed0", 0.9, 0.9, 0.9, 0.0, 0.0)]
    s = fg.summarize(committed, bounded)

    def split(b, c, n=300):
        return {"n": n, "b": b, "c": c, "disagree": b + c, "gap_points": 100 * (b - c) / n}
    pts = {"a_s0.9_seed0": {"test": split(7, 1), "val": split(2, 2), "p_test_over_1": 0.035},
           "b_s0.9_seed0": {"test": split(1, 1), "val": split(0, 0), "p_test_over_1": 0.0},
           "c_s0.9_seed0": {"test": split(3, 0), "val": split(1, 0), "p_test_over_1": 0.0}}
    md = "\n".join(fg.markdown(s, "R", "B", "B", "g.png", 3, agreement=("A.json", {"points": pts})))
    assert "(`A.json`, `python -m experiments.fidelity_agreement`, 2 of these points)" in md
    assert "expects 0.0 of these 2 points more than 1 point below" in md and "; 1 are." in md
    assert "8 / 2 times on test and 2 / 2 on validation: more turn wrong" in md
    assert "a_s0.9_seed0 (7 right -> wrong, 1 wrong -> right; validation 4 changed; p = 0.04)" in md
    # the exact tail: b - c > 3 among d = 8 changed answers needs b >= 6 of 8
    assert tail_over(8, 3.0) == (28 + 8 + 1) / 256 and tail_over(3, 3.0) == 0.0
    counts = split_counts([0, 1, 2, 3], [0, 2, 1, 1], [0, 1, 1, 1])
    assert counts == {"n": 4, "float_correct": 2, "fixed_correct": 3, "disagree": 3, "b": 1,
                      "c": 2, "gap_points": -25.0}
