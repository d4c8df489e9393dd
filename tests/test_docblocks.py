"""Generated doc blocks: the text between two markers is replaced, the rest kept."""

import pytest

from simulator.docblocks import replace_block

START, END = "<!-- t:start -->", "<!-- t:end -->"


def test_replaces_between_markers_and_keeps_the_rest(tmp_path):
    p = tmp_path / "page.md"
    p.write_text(f"head\n{START}\nold 1\nold 2\n{END}\ntail\n")
    replace_block(p, START, END, "new \\1 $x")  # regex specials are text, not escapes
    assert p.read_text() == f"head\n{START}\nnew \\1 $x\n{END}\ntail\n"


def test_a_missing_marker_names_the_file_and_writes_nothing(tmp_path):
    p = tmp_path / "page.md"
    p.write_text(f"head\n{START}\nold\n")
    with pytest.raises(SystemExit, match="page.md: markers"):
        replace_block(p, START, END, "new")
    assert p.read_text() == f"head\n{START}\nold\n"
