"""Hardware budgets of a deployed network from its recorded activity (Lava-free).

- estimate.py  counts, memory, cores, energy and time per profile (`estimate`, `compare`)
- text.py      tables and the energy plot
- cli.py       `python -m lava_runtime budget`
"""
