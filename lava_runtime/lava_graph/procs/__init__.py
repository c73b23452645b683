"""Lava processes and ProcessModels of this runtime (importing them imports Lava).

They live in their own package because Lava's compiler imports every module in a process's
folder while it searches for ProcessModels; this folder holds nothing else."""
