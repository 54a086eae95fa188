"""The bar reader: pandas' C parser on the throughput path, the Python readers behind it.

The fast path must give exactly the bars the line-by-line reader gives (the same floats as
`float()`, the same epochs as `datetime.fromisoformat`), or the replay's decisions would
change with the reader; anything it does not read cleanly goes to the Python readers.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.harness.data import shared_data_dir
from tools.backtest.inputs import (
    EXPECTED_HEADER,
    InputError,
    _bars,
    _bars_by_pandas,
    read_bars_csv,
)

BAR_FILES = sorted(p for p in shared_data_dir().glob("*.csv") if not p.name.startswith("vix_daily"))
HEADER = ",".join(EXPECTED_HEADER) + "\n"


def careful(path: Path) -> list[tuple[float, ...]]:
    body = path.read_text(encoding="utf-8-sig").split("\n", 1)[1]
    return list(_bars(path, io.StringIO(body)))


@pytest.mark.parametrize("path", BAR_FILES, ids=lambda p: p.name)
def test_every_bundled_bar_file_reads_bit_identical_through_either_reader(path: Path) -> None:
    expected = careful(path)
    assert len(expected) > 100
    assert read_bars_csv(path) == expected
    columns = _bars_by_pandas(path)
    assert columns is not None and list(columns) == expected
    assert columns[0] == expected[0] and columns[-3:] == expected[-3:]


def test_an_empty_volume_is_zero_as_before(tmp_path: Path) -> None:
    path = tmp_path / "vix.csv"
    path.write_text(HEADER + "2019-02-11T09:31:00-05:00,15.87,15.9,15.8,15.88,\n"
                    "2019-02-11T09:32:00-05:00,15.91,15.95,15.9,15.91,7\n", encoding="utf-8")
    assert read_bars_csv(path) == careful(path)
    assert [b[5] for b in read_bars_csv(path)] == [0.0, 7.0]


@pytest.mark.parametrize(("rows", "problem"), [
    ("2019-02-11T09:30:00,1,1,1,1,1\n", "no UTC offset"),
    ("2019-02-11T09:31:00-05:00,1,1,1,1,1\n2019-02-11T09:30:00-05:00,1,1,1,1,1\n",
     "ascending"),
    ("2019-02-11T09:30:00-05:00,1,,1,1,1\n", ":2:"),
    ("2019-02-11T09:30:00-05:00,1,x,1,1,1\n", ":2:"),
])
def test_what_the_fast_reader_refuses_the_careful_one_names(
        tmp_path: Path, rows: str, problem: str) -> None:
    path = tmp_path / "spy.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    assert _bars_by_pandas(path) is None
    with pytest.raises(InputError, match=problem):
        read_bars_csv(path)


def test_a_nan_price_is_read_as_python_reads_it(tmp_path: Path) -> None:
    """`float('nan')` is a float: the careful reader passes it on (the brain refuses the bar)."""
    path = tmp_path / "spy.csv"
    path.write_text(HEADER + "2019-02-11T09:30:00-05:00,1,nan,1,1,1\n", encoding="utf-8")
    assert _bars_by_pandas(path) is None
    (bar,) = read_bars_csv(path)
    assert bar[2] != bar[2]
