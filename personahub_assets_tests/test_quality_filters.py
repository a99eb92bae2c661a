"""Which valid samples an export keeps, the export schema, and the fields imports keep."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personahub_assets.lib.ingest.sources import SourceRecord, read_records
from personahub_assets.lib.quality.quality import (
    BELOW_MIN_SCORE,
    NOT_JUDGED,
    domain_columns,
    exclusion_reason,
    export_fields,
    split_for_export,
)

ROWS = [
    {"id": 1, "safety_flag": False, "judge_score": 5},
    {"id": 2, "safety_flag": True, "safety_reason": "offensive_language", "judge_score": 5},
    {"id": 3, "safety_flag": False, "judge_score": 2},
    {"id": 4, "safety_flag": None, "judge_score": None},
    {"id": 5, "safety_flag": True, "safety_reason": None, "judge_score": None},
]


def test_without_a_minimum_only_the_safety_flag_excludes():
    kept, dropped = split_for_export(ROWS)
    assert [r["id"] for r in kept] == [1, 3, 4]
    assert dropped == {"safety:offensive_language": 1, "safety:unspecified": 1}


def test_a_minimum_score_excludes_low_and_unjudged_samples():
    kept, dropped = split_for_export(ROWS, min_judge_score=3)
    assert [r["id"] for r in kept] == [1]
    assert dropped == {"safety:offensive_language": 1, "safety:unspecified": 1,
                       BELOW_MIN_SCORE: 1, NOT_JUDGED: 1}
    assert exclusion_reason({"judge_score": 3}, 3) is None


def test_minimum_out_of_range_has_a_reason():
    with pytest.raises(ValueError, match="between 0 and 5"):
        split_for_export(ROWS, min_judge_score=6)


def test_export_schema_and_columns_per_domain():
    base = pa.schema([("sample_id", pa.string())])
    instruction = export_fields(base, "instruction")
    math = export_fields(base, "math")
    assert "constraints_passed" in instruction.names and "constraints_passed" not in math.names
    assert instruction.field("judge_score").type == pa.int32()
    assert {"persona_domain", "safety_flag"} <= set(math.names)
    row = domain_columns({"sample_id": "s", "constraints": "[]", "response": "x"}, "math")
    assert row == {"sample_id": "s"}


def test_imports_keep_the_fields_their_source_has(tmp_path):
    elite = {"persona": "A paediatric nurse.", "general domain (top 1 percent)": "Medicine",
             "nested": {"dropped": True}}
    (tmp_path / "p.jsonl").write_text(json.dumps(elite) + "\n")
    [rec] = read_records(str(tmp_path / "p.jsonl"), "persona", "_none_")
    assert isinstance(rec, SourceRecord)
    assert rec.fields == {"general domain (top 1 percent)": "Medicine"}
    pq.write_table(pa.Table.from_pylist([{"persona": "A baker.", "occupation": "baker"}]),
                   tmp_path / "p.parquet")
    [plain] = read_records(str(tmp_path / "p.parquet"), "persona", "_none_")
    assert plain.fields is None  # only a persona import asks for the other columns
    [kept] = read_records(str(tmp_path / "p.parquet"), "persona", "_none_", keep_fields=True)
    assert kept.fields == {"occupation": "baker"}
