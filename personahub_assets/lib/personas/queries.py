"""Reads of the persona tables: ``personas``, ``rejected_personas`` and ``persona_attributes``.
Every read names the batch (and, for personas, the method) it is about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from personahub_assets.lib.common.queries import Rows, first_value

#: The provenance columns every generated persona must fill.
PROVENANCE_COLUMNS = ("backend", "model", "template", "template_version", "sampling_params")

_MISSING_PROVENANCE = (
    "SELECT count(*) FROM personas WHERE method = ? AND batch = ? AND ("
    + " OR ".join(f"{c} IS NULL OR {c} = ''" for c in PROVENANCE_COLUMNS) + ")")


def stored_persona_counts(rows: Rows, method: str, batch: str) -> dict[str, int]:
    """``{"kept": n, "rejected": n}``: the personas and rejections of one method in a batch."""
    return rows(
        "SELECT (SELECT count(*) FROM personas WHERE method = ? AND batch = ?) AS kept, "
        "(SELECT count(*) FROM rejected_personas WHERE method = ? AND batch = ?) "
        "AS rejected", [method, batch, method, batch])[0]


def missing_provenance(rows: Rows, method: str, batch: str) -> int:
    """Personas of one method in a batch with an empty provenance column."""
    return first_value(rows, _MISSING_PROVENANCE, [method, batch])


def text_personas_of(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The Text-to-Persona personas of a batch, the parents of the first relation hop."""
    return rows("SELECT persona_id, persona, doc_id, depth FROM personas "
                "WHERE method = 'text' AND batch = ? ORDER BY persona_id, doc_id, role",
                [batch])


def relation_orphans(rows: Rows, batch: str) -> int:
    """Relation personas of a batch whose parent is not in the batch one hop up."""
    return first_value(
        rows, "SELECT count(*) FROM personas c WHERE c.method = 'relation' AND c.batch = ? "
        "AND NOT EXISTS (SELECT 1 FROM personas p WHERE p.persona_id = c.parent_persona_id "
        "AND p.batch = c.batch AND p.depth = c.depth - 1)", [batch])


def attribute_inputs(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The hub personas of a batch with the source fields an import carried (None for the
    others), by persona ID."""
    return rows(
        "SELECT h.persona_id, h.persona, any_value(p.source_fields) AS source_fields "
        "FROM persona_hub h LEFT JOIN personas p ON p.persona_id = h.persona_id "
        "AND p.method = 'import' AND p.source_fields IS NOT NULL "
        "WHERE h.batch = ? GROUP BY h.persona_id, h.persona ORDER BY h.persona_id", [batch])


def attributed_count(rows: Rows, batch: str, domains: Sequence[str]) -> int:
    """Rows of a batch in ``persona_attributes`` whose domain is one of ``domains``."""
    return first_value(rows, "SELECT count(*) FROM persona_attributes WHERE batch = ? AND "
                       "domain IN (SELECT unnest(?))", [batch, list(domains)])


def attributes_of(rows: Rows, persona_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``persona_id -> {persona_id, domain, expertise, language}`` for the personas given."""
    return {r["persona_id"]: r for r in rows(
        "SELECT persona_id, domain, expertise, language FROM persona_attributes "
        "WHERE persona_id IN (SELECT unnest(?))", [list(persona_ids)])}
