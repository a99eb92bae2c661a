"""Reads for the export: the valid samples of a domain and batch with every column the
release carries, and the figures the export check and the dataset card compare against."""

from __future__ import annotations

from typing import Any

from personahub_assets.lib.common.queries import Rows, first_value
from personahub_assets.lib.quality.quality import EXPORT_COLUMNS, EXPORT_JOINS


def samples_to_export(rows: Rows, domain: str, batch: str) -> list[dict[str, Any]]:
    """The valid samples of a partition with the math vote, the response, the quality
    verdicts and the persona's attributes, by sample ID."""
    return rows(
        "SELECT s.*, a.answer AS verified_answer, a.votes AS answer_votes, "
        "coalesce(a.verified, false) AS verified, " + EXPORT_COLUMNS + " FROM synthetic_samples s "
        "LEFT JOIN math_answers a USING (sample_id) " + EXPORT_JOINS +
        " WHERE s.domain = ? AND s.batch = ? AND s.valid ORDER BY s.sample_id",
        [domain, batch])


def valid_sample_count(rows: Rows, domain: str, batch: str) -> int:
    """Valid samples of a partition in ``synthetic_samples``."""
    return first_value(rows, "SELECT count(*) FROM synthetic_samples WHERE domain = ? AND "
                       "batch = ? AND valid", [domain, batch])


def domain_screening(rows: Rows, domain: str) -> list[dict[str, Any]]:
    """The quality verdicts of every valid sample of a domain, all batches: the dataset card
    describes the domain's whole folder."""
    return rows(
        "SELECT q.safety_flag, q.safety_reason, q.judge_score FROM synthetic_samples s "
        "LEFT JOIN sample_quality q USING (sample_id) WHERE s.domain = ? AND s.valid",
        [domain])
