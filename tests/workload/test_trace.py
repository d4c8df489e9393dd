"""Azure trace loading: the real format, and one-line errors naming file, row and column."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.errors import DataError
from simulator.workload.trace import load_azure_trace, load_token_column

TRACE = Path(__file__).parent / "data" / "azure_conv_head.csv"
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
GOOD = ["2023-11-16 18:15:46.6805900,374,44", "2023-11-16 18:15:50.9951690,396,109",
        "2023-11-16 18:15:51.2224670,879,0"]


def write(tmp: Path, lines: list[str], name: str = "t.csv") -> Path:
    p = tmp / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_real_excerpt():
    df = load_azure_trace(TRACE)
    assert list(df.columns) == ["timestamp", "t_s", "input_tokens", "output_tokens"]
    assert len(df) == 200
    assert df["t_s"].iloc[0] == 0.0
    assert df["t_s"].iloc[1] == pytest.approx(4.314579)  # 18:15:50.995169 - 18:15:46.680590
    assert (np.diff(df["t_s"]) >= 0).all()
    assert df["input_tokens"].dtype == np.int64 and df["output_tokens"].dtype == np.int64
    assert (df["input_tokens"].iloc[:3] == [374, 396, 879]).all()
    assert str(df["timestamp"].dtype).startswith("datetime64")


def test_zero_generated_tokens_is_valid(tmp_path):
    df = load_azure_trace(write(tmp_path, [HEADER, *GOOD]))
    assert df["output_tokens"].tolist() == [44, 109, 0]


def test_extra_columns_and_trailing_blank_lines_ok(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("TIMESTAMP,Model,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,x,1,2\n\n\n")
    assert load_azure_trace(p)["input_tokens"].tolist() == [1]


def test_token_column_any_csv(tmp_path):
    p = write(tmp_path, ["a,Tokens", "x,5", "y,0"])
    assert load_token_column(p, "Tokens").tolist() == [5, 0]


@pytest.mark.parametrize(
    "lines, row, column, words",
    [
        ([HEADER, GOOD[0], "2023-13-16 18:15:47,3,4"], 3, "TIMESTAMP", "not a timestamp"),
        ([HEADER, GOOD[0], GOOD[1], "yesterday,3,4"], 4, "TIMESTAMP", "not a timestamp"),
        ([HEADER, GOOD[0], "2023-11-16 18:15:47,3,-4"], 3, "GeneratedTokens", "below 0"),
        ([HEADER, GOOD[0], "2023-11-16 18:15:47,0,4"], 3, "ContextTokens", "below 1"),
        ([HEADER, GOOD[0], "2023-11-16 18:15:47,NaN,4"], 3, "ContextTokens", "not a token count"),
        ([HEADER, GOOD[0], "2023-11-16 18:15:47,3,"], 3, "GeneratedTokens", "empty cell"),
        ([HEADER, GOOD[0], "2023-11-16 18:15:47,3.5,4"], 3, "ContextTokens", "not an integer"),
        ([HEADER, GOOD[0], "", GOOD[1]], 3, "TIMESTAMP", "empty cell"),
        ([HEADER, GOOD[0], "2023-11-16 18:15:47,3"], 3, "GeneratedTokens", "empty cell"),
        (["TIMESTAMP,ContextTokens", GOOD[0]], 1, "GeneratedTokens", "missing required column"),
    ],
)
def test_bad_rows(tmp_path, lines, row, column, words):
    p = write(tmp_path, lines)
    with pytest.raises(DataError) as ei:
        load_azure_trace(p)
    e = ei.value
    msg = str(e)
    assert (e.file, e.row, e.column) == (str(p), row, column)
    assert str(p) in msg and f"row {row}" in msg and repr(column) in msg and words in msg
    assert "\n" not in msg


def test_too_many_fields(tmp_path):
    p = write(tmp_path, [HEADER, GOOD[0], GOOD[1] + ",7"])
    with pytest.raises(DataError, match="row 3: wrong number of fields"):
        load_azure_trace(p)


@pytest.mark.parametrize(
    "content, words",
    [(None, "not found"), ("", "empty"), (HEADER + "\n", "no data rows")],
)
def test_unreadable_files(tmp_path, content, words):
    p = tmp_path / "t.csv"
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError) as ei:
        load_azure_trace(p, field="workload.traces.chat")
    assert str(p) in str(ei.value) and words in str(ei.value)


_bad_ts = st.sampled_from(["", "2023-11-31 10:00:00", "16/11/2023 x", "noon", "2023-11-16 25:00:00"])
_bad_tok = st.one_of(
    st.integers(max_value=-1).map(str),
    st.sampled_from(["", "NaN", "nan", "1.5", "abc", "inf", "-inf", "1e40"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_good=st.integers(0, 5),
    col=st.sampled_from(["TIMESTAMP", "ContextTokens", "GeneratedTokens"]),
    data=st.data(),
)
def test_corrupt_row_is_located(n_good, col, data):
    """One corrupt cell among good rows: the error names its file, line and column."""
    bad = data.draw(_bad_ts if col == "TIMESTAMP" else _bad_tok)
    cells = {"TIMESTAMP": "2023-11-16 18:15:47.5", "ContextTokens": "12", "GeneratedTokens": "3"}
    cells[col] = bad
    row_text = ",".join(cells[c] for c in ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    lines = [HEADER, *(GOOD[i % 3] for i in range(n_good)), row_text, GOOD[0]]
    with tempfile.TemporaryDirectory() as d:
        p = write(Path(d), lines)
        with pytest.raises(DataError) as ei:
            load_azure_trace(p)
    e = ei.value
    assert (e.row, e.column) == (n_good + 2, col)
    assert str(p) in str(e) and f"row {n_good + 2}" in str(e) and repr(col) in str(e)
    assert "\n" not in str(e)
