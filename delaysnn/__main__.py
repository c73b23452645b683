"""python -m delaysnn SUBCOMMAND ... (the same as the `delaysnn` console script)."""
import sys

from delaysnn.cli import main

sys.exit(main())
