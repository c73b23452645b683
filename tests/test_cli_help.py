"""Each command's --help description is a whole sentence (the first paragraph of its module
docstring), not a line cut mid-sentence."""
from __future__ import annotations

import pytest


def _description(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    # argparse prints usage, a blank line, the description, a blank line, the arguments
    return " ".join(out.split("\n\n")[1].split())


@pytest.mark.parametrize("command", ["export.to_lava", "experiments.sweep"])
def test_help_description_is_a_whole_sentence(command, capsys):
    if command == "export.to_lava":
        from export.to_lava import main
        text = _description(main, ["--help"], capsys)
        assert text.endswith("write netx HDF5, report.")
    else:
        from experiments.sweep import main
        text = _description(main, ["--help"], capsys)
        assert text.endswith("one small JSON per point; a report built from those JSONs.")
