"""Reads for the quality stage: the samples of a domain and batch to screen and judge, and
what ``sample_quality`` holds for them."""

from __future__ import annotations

from typing import Any

from personahub_assets.lib.common.queries import Rows, first_value


def samples_to_screen(rows: Rows, domain: str, batch: str) -> list[dict[str, Any]]:
    """Every sample of a partition (valid or not), its structured value or text, and the
    instruction response where there is one, by sample ID."""
    return rows(
        "SELECT s.sample_id, s.persona, s.valid, coalesce(s.json_value, s.text) AS text, "
        "r.response FROM synthetic_samples s LEFT JOIN instruction_responses r "
        "USING (sample_id) WHERE s.domain = ? AND s.batch = ? ORDER BY s.sample_id",
        [domain, batch])


def screened_count(rows: Rows, domain: str, batch: str) -> int:
    """Rows of a partition in ``sample_quality`` that carry a safety verdict."""
    return first_value(rows, "SELECT count(*) FROM sample_quality WHERE domain = ? AND "
                       "batch = ? AND safety_flag IS NOT NULL", [domain, batch])
