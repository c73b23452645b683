"""The Lava process graph (the only package that imports Lava).

- graph.py    `run_network(net, payloads, backend)`: builds and runs the graph (or the emulator)
- sandbox.py  runs a Lava job in a child process, bounded by a timeout, leaving nothing behind
- worker.py   the child's entry point;  lanes.py  samples side by side per step
- procs/      ProcessModels (its own folder: Lava's compiler imports every module in it)
"""
