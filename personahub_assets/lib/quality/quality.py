"""Which valid samples an export keeps: the safety screen and the judge's minimum score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

#: Reasons a valid sample is left out of an export.
SAFETY = "safety:"
BELOW_MIN_SCORE = "judge_score_below_minimum"
NOT_JUDGED = "not_judged"

#: Columns an export row gets from the quality, response and persona-attribute tables.
INSTRUCTION_COLUMNS = ("constraints", "response", "constraints_passed", "constraint_verdicts")
QUALITY_COLUMNS = ("judge_score", "judge_reason", "safety_flag", "safety_reason")
PERSONA_COLUMNS = ("persona_occupation", "persona_domain", "persona_expertise",
                   "persona_language")

#: The joins that bring those columns to a valid sample (a fixed text, never user input).
EXPORT_JOINS = (
    "LEFT JOIN instruction_responses r USING (sample_id) "
    "LEFT JOIN sample_quality q USING (sample_id) "
    "LEFT JOIN persona_attributes pa USING (persona_id)"
)
EXPORT_COLUMNS = (
    "r.constraints, r.response, r.constraints_passed, r.constraint_verdicts, "
    "q.judge_score, q.judge_reason, q.safety_flag, q.safety_reason, "
    "pa.occupation AS persona_occupation, pa.domain AS persona_domain, "
    "pa.expertise AS persona_expertise, pa.language AS persona_language"
)


def exclusion_reason(row: Mapping[str, Any], min_judge_score: int) -> str | None:
    """Why a valid sample stays out of the export, or ``None`` when it goes in.

    A safety flag always excludes. With a minimum score set, a sample the judge did not score
    is excluded too: an export that asks for quality does not take unjudged rows on trust.
    """
    if row.get("safety_flag"):
        return SAFETY + str(row.get("safety_reason") or "unspecified")
    if min_judge_score > 0:
        score = row.get("judge_score")
        if score is None:
            return NOT_JUDGED
        if score < min_judge_score:
            return BELOW_MIN_SCORE
    return None


def split_for_export(
    rows: Sequence[Mapping[str, Any]], min_judge_score: int = 0
) -> tuple[list[Mapping[str, Any]], Counter]:
    """(rows kept, count of rows left out by reason)."""
    if not 0 <= min_judge_score <= 5:
        raise ValueError(f"min_judge_score must be between 0 and 5, got {min_judge_score}")
    kept, dropped = [], Counter()
    for row in rows:
        reason = exclusion_reason(row, min_judge_score)
        if reason is None:
            kept.append(row)
        else:
            dropped[reason] += 1
    return kept, dropped


def domain_columns(row: dict[str, Any], domain: str) -> dict[str, Any]:
    """The row without the columns that only another domain fills."""
    if domain != "instruction":
        for key in INSTRUCTION_COLUMNS:
            row.pop(key, None)
    return row


def export_fields(schema: pa.Schema, domain: str) -> pa.Schema:
    """The export schema with the quality and persona columns (and, for the instruction
    domain, the constraint columns), so every batch's file has the same types."""
    fields = list(schema)
    if domain == "instruction":
        fields += [pa.field("constraints", pa.string()), pa.field("response", pa.string()),
                   pa.field("constraints_passed", pa.bool_()),
                   pa.field("constraint_verdicts", pa.string())]
    fields += [pa.field("judge_score", pa.int32()), pa.field("judge_reason", pa.string()),
               pa.field("safety_flag", pa.bool_()), pa.field("safety_reason", pa.string())]
    fields += [pa.field(name, pa.string()) for name in PERSONA_COLUMNS]
    return pa.schema(fields)
