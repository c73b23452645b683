"""export: trained checkpoint -> Lava fixed-point network (DeployedNetwork) -> netx HDF5.

- export.to_lava      `export_checkpoint(path, profile)` and `python -m export.to_lava` (CLI)
- export.to_onnx      the float model with integer delays as ONNX (`python -m export.to_onnx`)
- trainer.checkpoint   read and validate docs/design.md section 2 checkpoints
- export.float_reference  float model with integer delays from the synapse lists
- export.quantize     BatchNorm folding, scales, Lava weight rule, neuron parameters
- deployed.fixed_point   Lava's fixed-point rules written out (weights, shifts, LIF decays)
- deployed.limits    hardware-profile limits (violations are ProfileViolation)
- deployed.netx_h5      save / load HDF5 (netx layout + the complete delaysnn group)
- export.report       report summary and text
"""
