"""Reads of the synthesis tables: ``synthetic_samples``, ``math_solutions``, ``math_answers``
and ``instruction_responses``. Every read names the partition (batch, and domain where the
table has one) it is about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from personahub_assets.lib.common.queries import Rows, first_value

_PARTITION_STATS = (
    "SELECT count(*) AS n, count(*) FILTER (WHERE valid) AS valid, "
    "count(*) FILTER (WHERE persona_id IS NULL OR template IS NULL OR template_version "
    "IS NULL OR model IS NULL OR backend IS NULL OR sampling_params IS NULL) AS missing "
    "FROM synthetic_samples WHERE domain = ? AND batch = ?")


def sample_partition_stats(rows: Rows, partitions: Sequence[tuple[str, str]]
                           ) -> dict[tuple[str, str], dict[str, int]]:
    """``(domain, batch) -> {"n", "valid", "missing"}``: stored samples, valid ones and ones
    missing a provenance column, for each partition given (zeros for an empty one)."""
    return {(domain, batch): rows(_PARTITION_STATS, [domain, batch])[0]
            for domain, batch in partitions}


def valid_instructions(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The valid samples of the instruction domain in a batch (ID, mode, text)."""
    return rows("SELECT sample_id, mode, text FROM synthetic_samples WHERE domain = "
                "'instruction' AND valid AND batch = ? ORDER BY sample_id", [batch])


def answered_instructions(rows: Rows, batch: str) -> int:
    """Rows of a batch in ``instruction_responses`` with constraints and verdicts."""
    return first_value(rows, "SELECT count(*) FROM instruction_responses WHERE batch = ? AND "
                       "constraints IS NOT NULL AND constraint_verdicts IS NOT NULL", [batch])


def valid_math_problems(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The valid samples of the math domain in a batch (ID and text)."""
    return rows("SELECT sample_id, text FROM synthetic_samples WHERE domain = 'math' AND "
                "valid AND batch = ? ORDER BY sample_id", [batch])


def stored_math_counts(rows: Rows, batch: str) -> dict[str, int]:
    """``{"solutions": n, "answers": n}``: the rows of a batch in the two math tables."""
    return rows("SELECT (SELECT count(*) FROM math_solutions WHERE batch = ?) AS solutions, "
                "(SELECT count(*) FROM math_answers WHERE batch = ?) AS answers",
                [batch, batch])[0]
