"""A Lava ProcessModel that fails on purpose, and a worker that adds it to the real graph.

Its own folder: Lava's compiler imports every module beside a process while it looks for models.
"""
