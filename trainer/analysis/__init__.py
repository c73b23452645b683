"""Post-training analysis of a checkpoint (docs/design.md section 2), read as plain data.

Modules:
- the checkpoint is read by `trainer.checkpoint.load_checkpoint` (numpy synapse lists);
- `receptive_fields`: signed (input channel, delay) receptive field of each neuron, neuron ranking;
- `ei_clustering`: do excitatory and inhibitory synapses group together in (channel, delay)?
  nearest-neighbour sign agreement against a sign-shuffle null (z-score);
- `delay_counts`: connections per delay, split by sign;
- `figures`: matplotlib (Agg) PNGs of the above;

`trainer.analyze` ties them together (`analyze(run_dir, ...)` and the CLI).
"""
