"""Budget estimator: exact counts on hand-built networks, memory, mapping, energy, refusals."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.budget_nets import activity, layer, network, small_net
from hw_profiles import load_profile
from lava_runtime.budget.estimate import check_activity, compare, estimate
from deployed.cores import map_to_cores, network_memory_bytes

N, T = 2, 10


def small_activity(net):
    """One payload (7) on channel 0 (fan-out 3); hidden spikes: neuron 1 (fan-out 2) in sample 0,
    neuron 3 (fan-out 1) in sample 1. Synops: (3 + 2 + 1) / 2 samples = 3 per sample."""
    steps = T + net.latency
    pay = np.zeros((N, T, 3))
    pay[0, 2, 0] = 7
    sp = np.zeros((N, steps, 4))
    sp[0, 5, 1] = 1
    sp[1, 3, 3] = 1
    return activity(net, pay, [sp])


def toy_profile(tmp_path, limits=None, energy=None, timing=None):
    lines = ['name = "toy"', 'version = "1"', 'kind = "neuromorphic"', 'description = "toy"']
    for section, figs, unit in (("limits", limits, None), ("energy", energy, "J"),
                                ("timing", timing, "s")):
        for key, value in (figs or {}).items():
            u = unit or ("bool" if isinstance(value, bool) else
                         {"neurons_per_core": "neurons", "synapse_memory_bytes_per_core": "bytes",
                          "max_fan_in": "axons", "max_fan_out": "axons",
                          "cores_per_chip": "cores", "max_chips": "chips"}[key])
            if key == "static_power":
                u = "W"
            v = str(value).lower() if isinstance(value, bool) else repr(value)
            lines += [f"[{section}.{key}]", f"value = {v}", f'unit = "{u}"',
                      'source = "test"', 'basis = "documented"']
    path = tmp_path / "toy.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_profile(path)


def test_one_spike_through_known_fanout():
    net = small_net()
    b = estimate(net, small_activity(net), load_profile("loihi2"))
    fc1, out = b.layers
    assert fc1.input_events == 0.5 and fc1.synops == 1.5  # 1 payload x 3 synapses, / 2 samples
    assert out.input_events == 1.0 and out.synops == 1.5  # 2 + 1 synops, / 2 samples
    assert b.synops_per_sample == 3.0
    steps = T + net.latency
    assert b.steps == steps and fc1.dense_synops == 5 * steps and out.dense_synops == 4 * steps
    assert b.dense_synops_per_sample == 9 * steps
    assert b.neuron_updates_per_sample == 6 * steps
    assert b.spikes_per_sample == 1.0 and fc1.spikes_out == 1.0 and out.spikes_out == 0.0


def test_graded_payload_counts_once_per_synapse_whatever_its_value():
    net = small_net()
    a = small_activity(net)
    a.input_payload[0, 2, 0] = 15
    a.input_payload[1, 7, 2] = 1  # channel 2: fan-out 1
    b = estimate(net, a, load_profile("loihi2"))
    assert b.layers[0].synops == (3 + 1) / 2


def test_delay_memory_grows_with_delay_range():
    totals = []
    for scale in (1, 4, 10):
        net = small_net(delay_scale=scale)
        mem = network_memory_bytes(net.layers, [8, 8])
        d1, d2 = 5 * scale, 2 * scale
        acc_bits = (4 * (d1 + 1) + 2 * (d2 + 1)) * 24  # slots per neuron per delay value
        assert mem["delay_accumulators"] == -(-acc_bits // 8)
        syn_bits = (5 * (8 + int(np.ceil(np.log2(d1 + 1))) + 2)
                    + 4 * (8 + int(np.ceil(np.log2(d2 + 1))) + 1))
        assert mem["synapses"] == -(-syn_bits // 8)
        assert mem["neuron_state"] == -(-(6 * (2 * 24 + 13)) // 8)
        totals.append(mem["total"])
    assert totals[0] < totals[1] < totals[2]
    assert estimate(small_net(), small_activity(small_net()),
                    load_profile("loihi2")).memory_bytes == network_memory_bytes(small_net().layers, [8, 8])


def test_loihi2_energy_breakdown_is_exact():
    net = small_net()
    b = estimate(net, small_activity(net), load_profile("loihi2"))
    assert b.cores == 1 and b.chips == 1 and b.refused == []
    assert b.messages_per_sample == {"local": 1.0, "cross_core": 0.0, "input": 0.5}
    e = b.energy_per_sample_joules
    steps = T + net.latency
    assert e["breakdown"] == pytest.approx({
        "synaptic_ops": 3.0 * 23.6e-12, "neuron_updates": 6 * steps * 81e-12,
        "routing_local": 1.0 * 1.7e-12, "routing_cross_core": 0.5 * 3.0e-12})
    assert e["total"] == pytest.approx(sum(e["breakdown"].values()))
    assert e["scope"] == "dynamic" and e["not_counted"] == {}
    # time per step: the single core's work; Loihi 1 proxy timings
    work = (3.0 * N * 3.5e-9 + N * steps * 6 * 8.4e-9) / (N * steps)
    assert b.time_per_step_seconds == pytest.approx(work + 4.1e-9)
    # static energy: separate from the dynamic total, Loihi 1's idle power as a labelled proxy
    assert b.static_energy_per_sample_joules == pytest.approx(0.029 * steps *
                                                              b.time_per_step_seconds)
    assert "proxy" in b.static_energy_note and "Blouw" in b.static_energy_note
    assert "deployed.cores" in b.memory_model and "24" in b.memory_model
    assert b.sources["energy.synop"].startswith("2.36e-11 J [proxy]")


def test_mapping_splits_cores_and_counts_cross_core_messages(tmp_path):
    net = small_net()
    p = toy_profile(tmp_path, limits={"neurons_per_core": 2}, energy={"synop": 1e-12,
                    "neuron_update": 1e-12, "spike_local": 1e-12, "spike_hop": 1e-12})
    b = estimate(net, small_activity(net), p)
    assert b.cores == 3 and b.core_usage["neurons"] == [2, 2, 2]
    # neuron 1 (core 0) and neuron 3 (core 1) both reach the readout on core 2
    assert b.messages_per_sample == {"local": 0.0, "cross_core": 1.0, "input": 0.5}
    assert b.core_usage["fan_out"] == [1, 2, 0]  # (neuron, destination core) pairs
    assert b.core_usage["fan_in"] == [1, 2, 3]
    assert b.chips is None and "no cores_per_chip" not in str(b.assumptions)


def test_static_power_over_run_time(tmp_path):
    net = small_net()
    p = toy_profile(tmp_path, limits={"neurons_per_core": 100},
                    energy={"synop": 1e-12, "neuron_update": 2e-12, "static_power": 0.5},
                    timing={"synop_time": 1e-9, "neuron_update_time": 1e-8})
    b = estimate(net, small_activity(net), p)
    steps = T + net.latency
    t = (6 * 1e-9 + N * steps * 6 * 1e-8) / (N * steps)
    assert b.time_per_step_seconds == pytest.approx(t)
    e = b.energy_per_sample_joules
    assert "static" not in e["breakdown"] and e["total"] == pytest.approx(sum(e["breakdown"].values()))
    assert b.static_energy_per_sample_joules == pytest.approx(0.5 * t * steps)
    assert b.static_energy_note.startswith(f"static_power 0.5 W x {steps} steps")
    # without a static power figure: None, and the profile's reason
    b = estimate(net, small_activity(net), load_profile("spinnaker2"))
    assert b.static_energy_per_sample_joules is None
    assert b.static_energy_note == load_profile("spinnaker2").unpublished["static_power"]


@pytest.mark.parametrize("limits,match", [
    ({"neurons_per_core": 8, "max_fan_in": 1},
     r"out: max_fan_in = 2 exceeds limit 1 \(input axons of one core\)"),
    ({"synapse_memory_bytes_per_core": 10},
     r"fc1: synapse_memory_bytes_per_core = 29 exceeds limit 10 \(bytes of one core"),
    ({"neurons_per_core": 2, "cores_per_chip": 1, "max_chips": 1},
     r"network: max_chips = 3 exceeds limit 1 \(3 cores need 3 chips of 1 cores\)"),
    ({"neurons_per_core": 2, "max_fan_out": 1},
     r"core 1: max_fan_out = 2 exceeds limit 1 \(output axons of one core\)"),
])
def test_per_core_limits_refuse_with_reasons(tmp_path, limits, match):
    net = small_net()
    b = estimate(net, small_activity(net), toy_profile(tmp_path, limits=limits,
                                                        energy={"synop": 1e-12}))
    assert any(__import__("re").search(match, r) for r in b.refused), b.refused
    assert b.energy_per_sample_joules is None and b.cores is None


def test_xylo_refuses_a_delay_network_line_by_line():
    fc1 = layer("fc1", 40, 8, [(i, i % 8, i % 5, 2) for i in range(40)], message_bits=4)
    out = layer("out", 8, 3, [(i, i % 3, 0, 2) for i in range(8)], spiking=False)
    net = network([fc1, out], n_channels=40)
    a = activity(net, np.ones((1, T, 40)), [np.zeros((1, T + 2, 8))])
    b = estimate(net, a, load_profile("xylo-audio2"))
    assert b.refused == [
        "fc1: max_delay = 4 exceeds limit 0 (the profile has no synaptic delays) [source: "
        "rockpool Xylo Audio 2 mapper/config: no synaptic delays; decays are bit shifts "
        "(hardware.md)]",
        "network: max_inputs = 40 exceeds limit 16 [source: rockpool Xylo Audio 2 mapper/config: "
        "at most 16 input channels (hardware.md)]"]
    assert b.energy_per_sample_joules is None and b.cores is None
    assert b.time_per_step_seconds is None
    assert b.synops_per_sample == 40 * T  # counts do not depend on the chip


def test_loihi2_refuses_delay_63():
    net = small_net()
    net.layers[0].delay[1] = 63
    b = estimate(net, small_activity(net), load_profile("loihi2"))
    assert b.refused and b.refused[0].startswith(
        "fc1: max_delay = 63 exceeds limit 62 (1 synapse(s) above the limit) [source: lava-dl")


def test_dense_and_ann_profiles_side_by_side():
    net = small_net()
    steps = T + net.latency
    gpu, cpu, ann = compare(net, small_activity(net), [load_profile(n) for n in
                                                       ("gpu", "cpu", "ann-45nm")])
    assert gpu.energy_total == pytest.approx((9 * steps + 6 * steps) * 0.3e-9)
    assert cpu.energy_total == pytest.approx((9 * steps + 6 * steps) * 8.6e-9)
    e = ann.energy_per_sample_joules
    assert e["breakdown"] == pytest.approx({"macs": 9 * steps * 4.6e-12,
                                            "weight_reads": 9 * steps / 2 * 10e-12})
    assert e["snn_synops_at_ac"] == pytest.approx(3.0 * 0.9e-12)
    assert gpu.cores is None and gpu.synops_per_sample == ann.synops_per_sample == 3.0
    # float model: FP32 weights + delay + index bits, u and v, input history of D + 1 steps
    assert gpu.memory_bytes["delay_accumulators"] == -(-((6 * 3 + 3 * 4) * 32) // 8)


def test_activity_that_does_not_match_the_network():
    net = small_net()
    a = small_activity(net)
    a.spikes[0] = a.spikes[0][:, :, :3]
    with pytest.raises(ValueError, match=r"activity spikes\[0\] has shape \(2, 12, 3\), "
                                         r"expected \(2, 12, 4\) for layer fc1"):
        check_activity(net, a)
    a = small_activity(net)
    a.spikes = []
    with pytest.raises(ValueError, match="activity has spikes for 0 layers, the network has 1 "
                                         "spiking layers"):
        estimate(net, a, load_profile("loihi2"))


def test_json_has_the_promised_keys():
    import json
    net = small_net()
    j = estimate(net, small_activity(net), load_profile("loihi2")).to_json()
    for key in ("synops_per_sample", "dense_synops_per_sample", "neuron_updates_per_sample",
                "energy_per_sample_joules", "memory_bytes", "cores", "profile", "sources"):
        assert key in j
    assert "breakdown" in j["energy_per_sample_joules"]
    json.dumps(j)


def test_mapping_places_layers_in_order():
    m = map_to_cores(small_net().layers, [8, 8], neurons_per_core=3)
    assert [c.tolist() for c in m.core_of] == [[0, 0, 0, 1], [1, 1]]
    assert m.n_cores == 2


def test_xylo_fitting_network_has_no_per_op_energy():
    fc1 = layer("fc1", 16, 8, [(i, i % 8, 0, 2) for i in range(16)], message_bits=4)
    out = layer("out", 8, 3, [(i, i % 3, 0, 2) for i in range(8)], spiking=False)
    net = network([fc1, out], n_channels=16)
    a = activity(net, np.ones((1, T, 16)), [np.zeros((1, T + 2, 8))])
    b = estimate(net, a, load_profile("xylo-audio2"))
    assert b.refused == [] and b.cores is None
    e = b.energy_per_sample_joules
    assert e["total"] is None and e["breakdown"] == {}
    assert e["not_counted"]["synaptic_ops"].startswith("SynSense publishes whole-inference energy")
    assert "reference.bos_muir_2024_energy_per_inference" in b.sources
