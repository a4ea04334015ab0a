"""training_file's memos: a build after new data prepares only the new rows and a re-check validates only
unseen lines, with the same bytes, version and verdicts as a build and checks from nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.training_files import check_memo, memo, rows, validate
from pipeline.training_files.build import build_training_files
from pipeline.training_files.memo import RowMemo, row_memo_path
from pipeline_tests.training_files_helpers import example, make_target, pair, write_examples, write_pairs


def _examples(start: int, stop: int) -> list[dict]:
    out = [example(i, task="page_generation" if i % 3 else "section_edit", group=f"conv{i // 2}",
                   prompt=f"Build page {i} for a shop ✓", score=[7.0, None, 3.25][i % 3]) for i in range(start, stop)]
    if start == 0:
        out += [example(9000, completion="   "), example(9001, messages="[{broken"),
                example(9002, completion="token " * 17_000), dict(out[4], example_id="twin-of-4")]
    return out


def _pairs(start: int, stop: int, task: str) -> list[dict]:
    out = [pair(i, task=task, prompt=f"Question {i}", chosen=f"good {i}", rejected=f"bad {i}") for i in range(start, stop)]
    if start == 0:
        out += [pair(9000, chosen="same", rejected="same"), dict(out[3], pair_id="twin-of-3")]
    return out


def _write(target, start: int, stop: int) -> None:
    if target.method == "sft":
        write_examples(target.name, _examples(start, stop))
    else:
        write_pairs(target.name, _pairs(start, stop, "roast" if target.method == "dpo" else "signal_extraction"))


def _files(result) -> dict[str, bytes]:
    """Every file of the version (relative path -> bytes), and the manifest without paths and date."""
    root = result.manifest_path.parent
    out = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}
    manifest = {k: v for k, v in result.manifest.items() if k not in ("created_at", "files", "dropped_file",
                                                                      "evaluation_items", "source")}
    out["manifest"] = json.dumps(manifest, sort_keys=True).encode()
    return out


def _fresh(target, tmp_path, monkeypatch, rows_to: int, name: str = "fresh"):
    """A build over rows 0..rows_to-1 in another FLYWHEEL_HOME, without a memo."""
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / name))
    _write(target, 0, rows_to)
    return build_training_files(target, memo=False)


def _count_prepared(monkeypatch) -> list[str]:
    """Ids of the rows that reach prepare_example / prepare_pair from now on."""
    seen: list[str] = []
    for name in ("prepare_example", "prepare_pair"):
        real = getattr(rows, name)

        def counting(row, *args, _real=real, **kwargs):
            seen.append(str(row.get("example_id") or row.get("pair_id")))
            return _real(row, *args, **kwargs)

        monkeypatch.setattr(rows, name, counting)
    return seen


@pytest.mark.parametrize("target_name", ["sft_openai", "dpo_openai", "embed"])
def test_build_after_new_rows_is_byte_identical_to_a_fresh_build(target_name, tmp_path, monkeypatch):
    target = make_target(target_name)
    _write(target, 0, 80)
    build_training_files(target)
    _write(target, 0, 100)
    incremental = build_training_files(target)
    assert incremental.reused_rows > 0 and incremental.prepared_rows == 20
    fresh = _fresh(target, tmp_path, monkeypatch, 100)
    assert incremental.version == fresh.version
    assert _files(incremental) == _files(fresh)
    assert incremental.manifest["source"]["sha256"] == fresh.manifest["source"]["sha256"]


def test_rows_from_the_memo_are_not_prepared_again(monkeypatch):
    target = make_target("sft_openai")
    prepared = _count_prepared(monkeypatch)
    _write(target, 0, 60)
    first = build_training_files(target)
    assert len(prepared) == first.manifest["counts"]["input_rows"] == 64
    prepared.clear()
    _write(target, 0, 65)  # five new rows
    second = build_training_files(target)
    assert sorted(prepared) == [f"ex{i:06d}" for i in range(60, 65)]
    assert (second.reused_rows, second.prepared_rows) == (64, 5)
    prepared.clear()
    assert build_training_files(target).prepared_rows == 0 and not prepared  # nothing new: nothing prepared


def test_the_memo_holds_exactly_the_current_rows():
    target = make_target("sft_openai")
    _write(target, 0, 60)
    build_training_files(target)
    _write(target, 10, 40)  # rows left the input
    build_training_files(target)
    path = row_memo_path(target.name, "examples")
    held, _ = RowMemo.open(path, _fingerprint(target))
    assert held is not None and len(held.keys) == 30
    held.close()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def _fingerprint(target, **change):
    from pipeline.training_files import formats
    from pipeline.training_files.build import EXAMPLE_INPUT
    from pipeline.training_files.version import FORMAT_REVISION

    columns = sorted(c for c in (*EXAMPLE_INPUT["required"], *EXAMPLE_INPUT["optional"]))
    settings = dict(kind="examples", columns=columns, method=target.method, formats=formats.formats_for(target.method),
                    encoding="o200k_base", max_tokens=target.training_file.max_tokens_per_example,
                    format_revision=FORMAT_REVISION)
    return memo.row_fingerprint(**{**settings, **change})


@pytest.mark.parametrize("change", ["max_tokens", "encoding", "code"])
def test_a_changed_setting_or_code_prepares_every_row_again(change, monkeypatch):
    target = make_target("sft_openai")
    _write(target, 0, 40)
    build_training_files(target)
    if change == "max_tokens":
        target = target.model_copy(update={"training_file": target.training_file.model_copy(
            update={"max_tokens_per_example": 200})})
    elif change == "encoding":
        target = target.model_copy(update={"base_model": "gpt-4-0613"})  # cl100k_base, not o200k_base
    else:
        real = memo.source_version
        monkeypatch.setattr(memo, "source_version", lambda modules, packages=(): real(modules, packages) + "-edited")
    prepared = _count_prepared(monkeypatch)
    result = build_training_files(target)
    assert result.reused_rows == 0 and len(prepared) == 44
    assert result.memo_note is None  # another fingerprint is not damage


def test_source_version_follows_the_code(tmp_path, monkeypatch):
    module = tmp_path / "memo_probe_module.py"
    module.write_text("RULE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = memo.source_version(("memo_probe_module",))
    module.write_text("RULE = 2\n")
    assert memo.source_version(("memo_probe_module",)) != before


def _corrupt_blob(path: Path) -> None:
    """Change one character of a record inside the memo's blob (same length, so offsets still hold)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"Build page 7 for")
    assert at > 0
    data[at + 11] = ord("X")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["record", "truncated", "garbage", "arrays"])
def test_a_damaged_memo_is_ignored_and_the_result_is_still_right(damage, tmp_path, monkeypatch, caplog):
    target = make_target("sft_openai")
    _write(target, 0, 60)
    build_training_files(target)
    path = row_memo_path(target.name, "examples")
    if damage == "record":
        _corrupt_blob(path)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a memo at all")
    else:  # a byte of the arrays (the row keys, offsets, token counts) changed
        data = bytearray(path.read_bytes())
        footer = json.loads(data[-16 - int.from_bytes(data[-16:-8], "little"):-16])
        data[footer["arrays"]["tokens"][2]] ^= 0xFF
        path.write_bytes(bytes(data))
    _write(target, 0, 70)
    prepared = _count_prepared(monkeypatch)
    with caplog.at_level("WARNING"):
        result = build_training_files(target)
    assert result.memo_note and "ignored" in result.memo_note and result.memo_note in caplog.text
    if damage == "record":  # only the damaged row is prepared again, with the new ones
        assert sorted(prepared) == ["ex000007", *(f"ex{i:06d}" for i in range(60, 70))]
    else:
        assert result.reused_rows == 0
    fresh = _fresh(target, tmp_path, monkeypatch, 70)
    assert result.version == fresh.version and _files(result) == _files(fresh)


def _gates(manifest, memo_dir, max_tokens=16_385):
    return {
        "format": validate.format_gate(manifest, memo_dir=memo_dir),
        "uniqueness": validate.uniqueness_gate(manifest, memo_dir=memo_dir),
        "size": validate.size_gate(manifest, min_examples=10, max_tokens=max_tokens, memo_dir=memo_dir),
    }


def _verdicts(gates):
    return {name: (g.passed, g.description, g.metadata) for name, g in gates.items()}


def test_a_recheck_validates_only_lines_it_has_not_seen(monkeypatch):
    target = make_target("sft_openai")
    folder = memo.memo_dir(target.name)
    _write(target, 0, 60)
    first = _gates(build_training_files(target).manifest, folder)
    checked: list[str] = []
    real = validate.format_errors
    monkeypatch.setattr(validate, "format_errors", lambda fmt, record: checked.append(fmt) or real(fmt, record))
    _write(target, 0, 66)
    manifest = build_training_files(target).manifest
    again = _gates(manifest, folder)
    assert len(checked) == 6 * 4  # six new records, one line in each of the four formats
    assert all(g.passed for g in again.values()) and all(g.passed for g in first.values())
    assert _verdicts(again) == _verdicts(_gates(manifest, None))  # the same as checking every line


@pytest.mark.parametrize("target_name", ["sft_openai", "dpo_openai"])
def test_a_check_memo_never_passes_a_record_that_now_fails(target_name):
    target = make_target(target_name)
    folder = memo.memo_dir(target.name)
    _write(target, 0, 60)
    manifest = build_training_files(target).manifest
    assert all(g.passed for g in _gates(manifest, folder).values())
    fmt = manifest["backend_format"]
    train = Path(manifest["files"][fmt]["train"])
    lines = train.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[0])
    if fmt == "openai_chat":
        record["messages"][-1]["role"] = "wizard"  # unrecognized_role
    else:
        record["preferred_output"] = record["non_preferred_output"]  # identical_outputs
    bad = json.dumps(record).encode() + b"\n"
    train.write_bytes(b"".join([bad, *lines[1:], lines[1]]))  # one broken record, one duplicate
    gates = _gates(manifest, folder)
    assert not gates["format"].passed and gates["format"].metadata["bad_records"] == 1
    assert not gates["uniqueness"].passed and gates["uniqueness"].metadata["duplicates"] == 1
    assert not _gates(manifest, folder, max_tokens=5)["size"].passed  # the limit applies to remembered counts
    assert _verdicts(gates) == _verdicts(_gates(manifest, None))
    assert _verdicts(_gates(manifest, folder)) == _verdicts(gates)  # a failed line is not remembered as passed


def test_changed_validating_code_checks_every_line_again(monkeypatch):
    target = make_target("sft_openai")
    folder = memo.memo_dir(target.name)
    _write(target, 0, 40)
    manifest = build_training_files(target).manifest
    assert validate.format_gate(manifest, memo_dir=folder).passed
    # a stricter rule: its source differs, so the lines that passed before are checked again and fail
    real = check_memo.source_version
    monkeypatch.setattr(check_memo, "source_version", lambda modules, packages=(): real(modules, packages) + "-stricter")
    monkeypatch.setattr(validate, "format_errors", lambda fmt, record: ["stricter_rule"])
    gate = validate.format_gate(manifest, memo_dir=folder)
    assert not gate.passed and gate.metadata["bad_records"] == gate.metadata["records_checked"]


def test_a_damaged_check_memo_is_ignored(monkeypatch):
    target = make_target("sft_openai")
    folder = memo.memo_dir(target.name)
    _write(target, 0, 40)
    manifest = build_training_files(target).manifest
    before = _verdicts(_gates(manifest, folder))
    for path in folder.glob("gate-*.memo"):
        data = bytearray(path.read_bytes())
        data[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(data))
    checked: list[str] = []
    real = validate.format_errors
    monkeypatch.setattr(validate, "format_errors", lambda fmt, record: checked.append(fmt) or real(fmt, record))
    assert _verdicts(_gates(manifest, folder)) == before
    assert len(checked) == manifest["counts"]["written"] * 4  # every line checked again


def test_lines_split_as_text_mode_reads_them(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\r\n{"b": 2}\r{"c": 3}\n\n{"d": 4}')
    with open(path, encoding="utf-8") as handle:
        expected = [line.rstrip("\n").encode() for line in handle]
    got = [line for chunk in check_memo.line_chunks(path, chunk_bytes=5) for line in chunk[1]]
    assert got == expected
    keys = np.concatenate([chunk[2] for chunk in check_memo.line_chunks(path)])
    assert keys.tolist() == check_memo.line_keys(expected).tolist()
    assert [int.from_bytes(hashlib.sha256(expected[0]).digest()[:8], "big")] == keys[:1, 0].tolist()


def test_row_digests_are_the_input_hashers():
    import datetime

    import pyarrow as pa

    from pipeline.training_files.version import InputHasher, row_digests

    table = pa.table({
        "text": pa.array(["x", None, "", "é\x00"]), "score": pa.array([1.5, None, float("nan"), 5.0]),
        "n": pa.array([1, 2, None, 4]), "at": pa.array([datetime.datetime(2026, 1, 1), None, None, None]),
        "large": pa.array(["u", "v", None, "w"], pa.large_string()),
    })
    by_values, by_arrow = InputHasher(table.column_names), InputHasher(table.column_names)
    by_values.update_batch({c: table.column(c).to_pylist() for c in table.column_names})
    by_arrow.update_digests(row_digests(table, table.column_names))
    assert by_values.hexdigest() == by_arrow.hexdigest()
