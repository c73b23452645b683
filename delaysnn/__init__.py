"""The `delaysnn` command (delaysnn.cli): one entry point over the modules' own commands."""
