"""Readers: every input format, made here, streamed in batches; bad rows become error rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from guardrail.adapters.audit.fields import FieldSpec, parse_label_map, prepare
from guardrail.adapters.audit.readers import count_rows, detect_format, iter_records

from guardrail.errors import ConfigError

ROWS = [{"id": f"r{i}", "text": f"text number {i}", "label": i % 3 == 0} for i in range(23)]


def make_input(tmp_path: Path, fmt: str, rows: list[dict] = ROWS) -> Path:
    """Write ``rows`` in one of the input formats and return the path."""
    if fmt == "jsonl":
        path = tmp_path / "in.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "csv":
        import csv

        path = tmp_path / "in.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "parquet":
        path = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=7)
    else:
        datasets = pytest.importorskip("datasets")
        path = tmp_path / "in_hf"
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf"])
def test_every_format_streams_all_rows_in_order(tmp_path, fmt):
    path = make_input(tmp_path, fmt)
    assert detect_format(path) == fmt
    batches = list(iter_records(path, fmt, batch_size=5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    records = [r for b in batches for r in b]
    assert [r.row for r in records] == list(range(23))
    assert [str(r.fields["id"]) for r in records] == [r["id"] for r in ROWS]
    assert all(r.error is None for r in records)
    assert count_rows(path, fmt) == 23


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf"])
def test_skip_resumes_at_the_right_row(tmp_path, fmt):
    path = make_input(tmp_path, fmt)
    records = [r for b in iter_records(path, fmt, batch_size=4, skip=9) for r in b]
    assert [r.row for r in records] == list(range(9, 23))
    assert str(records[0].fields["id"]) == "r9"


def test_bad_jsonl_lines_become_error_records(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"text": "fine"}\n{"text": "\xff\xfe broken"}\n\nnot json\n[1, 2]\n{"text": "last"}\n'
    )
    records = [r for b in iter_records(path, "jsonl", batch_size=10) for r in b]
    assert [r.row for r in records] == [0, 1, 2, 3, 4]  # the blank line is not a row
    assert records[1].error is not None and "UTF-8" in records[1].error
    assert records[2].error is not None and "invalid JSON" in records[2].error
    assert records[3].error is not None and "not an object" in records[3].error
    assert records[4].fields == {"text": "last"}


def test_bad_csv_bytes_become_an_error_record(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,text\na,hello\nb,caf\xe9 latin-1\nc,bye\n")
    records = [r for b in iter_records(path, "csv", batch_size=10) for r in b]
    assert len(records) == 3
    assert records[1].error is not None and "UTF-8" in records[1].error
    assert records[2].fields == {"id": "c", "text": "bye"}


def test_prepare_records_problems_instead_of_raising(tmp_path):
    rows = [
        {"text": "ok", "label": "yes"},
        {"text": ""},
        {"text": "   "},
        {"text": 42},
        {"text": None},
        {"other": "x"},
        {"text": "t", "label": "maybe"},
    ]
    path = make_input(tmp_path, "jsonl", rows)
    spec = FieldSpec(label_field="label")
    prepared = [prepare(r, spec) for b in iter_records(path, "jsonl", batch_size=10) for r in b]
    assert prepared[0].error is None and prepared[0].label is True
    assert [p.error for p in prepared[1:6]] == [
        "empty text",
        "empty text",
        "'text' is int, not a string",
        "'text' is null",
        "no 'text' field",
    ]
    assert prepared[6].error is not None and "maybe" in prepared[6].error


def test_label_map_values_and_categories():
    spec = FieldSpec(
        label_field="y", label_map=parse_label_map(["toxic=unsafe,clean=safe", "h=hate"])
    )
    from guardrail.adapters.audit.readers import Record

    def lab(value: object) -> tuple[bool | None, str | None]:
        p = prepare(Record(0, {"text": "t", "y": value}), spec)
        return p.label, p.label_category

    assert lab("toxic") == (True, None)
    assert lab("clean") == (False, None)
    assert lab("h") == (True, "hate")
    assert lab(True) == (True, None)
    assert lab(None) == (None, None)
    with pytest.raises(ConfigError):
        parse_label_map(["novalue"])


def test_unknown_format_and_missing_input_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        detect_format(tmp_path / "nope.jsonl")
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    with pytest.raises(ConfigError, match="--format"):
        detect_format(odd)


def test_a_saved_dataset_dict_asks_for_one_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "dd"
    split = datasets.Dataset.from_list(ROWS[:3])
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(str(path))
    assert detect_format(path) == "hf"
    with pytest.raises(ConfigError, match="one split"):
        list(iter_records(path, "hf", batch_size=2))
    records = [r for b in iter_records(path / "train", "hf", batch_size=2) for r in b]
    assert [r.fields["id"] for r in records] == ["r0", "r1", "r2"]
