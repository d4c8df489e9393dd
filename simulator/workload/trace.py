"""Read request traces (Azure LLM inference trace format) with row-level validation.

Format (header line, then one request per line)::

    TIMESTAMP,ContextTokens,GeneratedTokens
    2023-11-16 18:15:46.6805900,374,44

Errors are :class:`~simulator.errors.DataError` naming the file, the **row** and the column.
"Row" is the line number in the file: the header is line 1, so the first request is row 2
(blank lines count, so the number is what an editor shows). Nothing is cached here (no module
state): callers load a trace once and pass the DataFrame or array around.
"""

from __future__ import annotations

import re
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from simulator.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

TIMESTAMP_COL = "TIMESTAMP"
INPUT_COL = "ContextTokens"
OUTPUT_COL = "GeneratedTokens"
AZURE_COLUMNS = (TIMESTAMP_COL, INPUT_COL, OUTPUT_COL)

_FIRST_DATA_ROW = 2  # file line of the first data row (the header is line 1)
_MAX_TOKENS = 2**31 - 1
_LINE_RE = re.compile(r"line (\d+)")
#: a timestamp that ends with a UTC offset (+05:00, -0800) or Z
_TZ_RE = r"(?:[Zz]|[+-]\d\d:?\d\d)\s*$"


def _read_raw(path: Path, columns: tuple[str, ...], field: str | None) -> pd.DataFrame:
    """All cells of ``columns`` as strings (missing cells as NaN), rows aligned to file lines."""
    import pandas as pd

    where = f" (named by {field})" if field else ""
    try:
        header = pd.read_csv(path, nrows=0, dtype=str)
    except FileNotFoundError:
        raise DataError(f"trace file not found{where}", file=str(path)) from None
    except IsADirectoryError:
        raise DataError(f"trace path is a folder, not a file{where}", file=str(path)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"trace file is empty (no header line){where}", file=str(path)) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read trace{where}: {e}", file=str(path)) from None
    names = [str(c).strip() for c in header.columns]
    for col in columns:
        if col not in names:
            raise DataError(
                f"missing required column {col!r}; the header has {', '.join(map(repr, names))}",
                file=str(path),
                row=1,
                column=col,
            )
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            skipinitialspace=True,
            # no header row for pandas: given names, a first data row with one field too many
            # would silently become an index and shift every column; read as data, the header
            # line fixes the width and any longer row is an error naming its line
            header=None,
            engine="c",
        )
        df = df.iloc[1:].reset_index(drop=True)
        df.columns = names
    except pd.errors.ParserError as e:
        m = _LINE_RE.search(str(e))
        raise DataError(
            "wrong number of fields (" + " ".join(str(e).split()).split(". ")[-1] + ")",
            file=str(path),
            row=int(m.group(1)) if m else None,
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"cannot read trace{where}: {e}", file=str(path)) from None
    df = df[list(columns)]
    # blank lines at the very end of the file are not rows
    filled = df.notna().any(axis=1).to_numpy()
    if filled.any():
        df = df.iloc[: int(np.flatnonzero(filled)[-1]) + 1]
    else:
        raise DataError("trace has a header but no data rows", file=str(path))
    return df


#: read some columns of a CSV as strings, with the errors of this module (file, row, column)
read_columns = _read_raw


def _bad(path: Path, raw: pd.Series, mask: np.ndarray, col: str, rule: str) -> DataError:
    i = int(np.flatnonzero(mask)[0])
    value = raw.iloc[i]
    shown = "an empty cell" if (value is None or (isinstance(value, float) and np.isnan(value))) else repr(value)
    return DataError(f"{shown} {rule}", file=str(path), row=i + _FIRST_DATA_ROW, column=col)


def _tokens(path: Path, raw: pd.Series, col: str, minimum: int) -> np.ndarray:
    """Parse a token column: integers >= ``minimum``; int64 array."""
    import pandas as pd

    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num)
    if bad.any():
        raise _bad(path, raw, bad, col, "is not a token count (an integer is needed)")
    frac = num != np.floor(num)
    if frac.any():
        raise _bad(path, raw, frac, col, "is not an integer token count")
    huge = num > _MAX_TOKENS
    if huge.any():
        raise _bad(path, raw, huge, col, f"is implausibly large (token counts must be <= {_MAX_TOKENS})")
    low = num < minimum
    if low.any():
        raise _bad(path, raw, low, col, f"is below {minimum} (token counts must be >= {minimum})")
    return num.astype(np.int64)


def parse_timestamps(path: Path, raw: pd.Series, col: str, fmt: str = "ISO8601") -> np.ndarray:
    """Timestamps of a column as naive datetime64[ns]. Rows that carry a UTC offset (+05:00, Z)
    are converted to UTC; a column that mixes rows with and without an offset is an error
    naming the first row that differs from the first row (which instant was meant is unknown)."""
    import pandas as pd

    has_tz = raw.astype(str).str.contains(_TZ_RE, regex=True).to_numpy()
    if has_tz.any() and not has_tz.all():
        first = bool(has_tz[0])
        raise _bad(path, raw, has_tz != first, col,
                   f"has {'no' if first else 'a'} timezone offset but the first row"
                   f" {'has one' if first else 'has none'}: give every timestamp an offset or"
                   " none")
    try:
        ts = pd.to_datetime(raw, format=fmt, errors="coerce", utc=bool(has_tz.any()))
    except (ValueError, TypeError, OverflowError) as e:
        raise DataError(f"cannot parse the timestamps: {e}", file=str(path), column=col) from None
    bad_ts = ts.isna().to_numpy()
    if bad_ts.any():
        raise _bad(path, raw, bad_ts, col,
                   "is not a timestamp (expected like 2023-11-16 18:15:46.6805900)")
    if has_tz.any():
        ts = ts.dt.tz_convert(None)
    return ts.to_numpy().astype("datetime64[ns]")


def load_azure_trace(path: Path, field: str | None = None) -> pd.DataFrame:
    """Load and validate an Azure-format trace.

    Args:
        path: the CSV file (columns TIMESTAMP, ContextTokens, GeneratedTokens; others ignored).
        field: the scenario field that named the file (e.g. ``workload.traces.chat``), quoted
            in the error when the file cannot be read.

    Returns:
        DataFrame in file order with columns ``timestamp`` (datetime64), ``t_s`` (float64,
        seconds since the earliest timestamp in the file, so ``>= 0``), ``input_tokens``
        (int64, ``>= 1``) and ``output_tokens`` (int64, ``>= 0``: Azure traces have rows with
        0 generated tokens; simulations use ``max(1, output_tokens)``).

    Raises:
        DataError: unreadable file, missing column, or a row with an unparseable timestamp,
            a non-integer / negative / missing token count, or ContextTokens of 0.
    """
    import pandas as pd

    path = Path(path)
    df = _read_raw(path, AZURE_COLUMNS, field)
    ts_ns = parse_timestamps(path, df[TIMESTAMP_COL], TIMESTAMP_COL)
    inp = _tokens(path, df[INPUT_COL], INPUT_COL, 1)
    out = _tokens(path, df[OUTPUT_COL], OUTPUT_COL, 0)
    t_ns = ts_ns.astype(np.int64)
    t_s = (t_ns - t_ns.min()).astype(np.float64) / 1e9
    return pd.DataFrame(
        {"timestamp": ts_ns, "t_s": t_s, "input_tokens": inp, "output_tokens": out}
    )


def load_token_column(path: Path, column: str, field: str | None = None) -> np.ndarray:
    """Token counts of one column of any CSV, as an int64 array of values ``>= 0``.

    Used by the ``empirical`` length distribution. Rows are validated as in
    :func:`load_azure_trace` (the error names the file, the row as a file line number and the
    column).
    """
    path = Path(path)
    df = _read_raw(path, (column,), field)
    return _tokens(path, df[column], column, 0)
