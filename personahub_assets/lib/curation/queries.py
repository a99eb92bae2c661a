"""Reads of the hub's tables that the assets make: ``persona_hub``, ``hub_ledger`` and
``persona_dedup_log``. The hub's own state reads live with the hub (``hub_state``, ``audit``).

Every read names the batches it is about, except :func:`hub_size`: the hub's unique-ID
check is about the whole hub, which a batch's run extends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from personahub_assets.lib.common.queries import Rows


def hub_personas(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The hub personas (ID and text) of a batch, by persona ID."""
    return rows("SELECT persona_id, persona FROM persona_hub WHERE batch = ? "
                "ORDER BY persona_id", [batch])


def ledger_entry(rows: Rows, batch: str) -> dict[str, Any] | None:
    """The ledger row of a batch (its figures when it was curated), or None before that."""
    found = rows("SELECT * FROM hub_ledger WHERE batch = ?", [batch])
    return found[0] if found else None


def hub_size(rows: Rows) -> dict[str, int]:
    """``{"n": rows, "ids": distinct persona IDs}`` over the whole hub."""
    return rows("SELECT count(*) AS n, count(DISTINCT persona_id) AS ids "
                "FROM persona_hub", [])[0]


def personas_of_batches(rows: Rows, batches: Sequence[str]) -> list[dict[str, Any]]:
    """The hub personas (ID and text) of the batches given."""
    return rows("SELECT persona_id, persona FROM persona_hub WHERE batch IN "
                "(SELECT unnest(?::VARCHAR[]))", [list(batches)])


def hub_preview(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The first ten hub personas of a batch by persona ID, for a preview."""
    return rows("SELECT persona_id, method, depth, persona FROM persona_hub "
                "WHERE batch = ? ORDER BY persona_id LIMIT 10", [batch])


def dedup_log_preview(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The first ten personas a batch's curation dropped, by stage, for a preview."""
    return rows("SELECT stage, similarity, persona, duplicate_of FROM persona_dedup_log "
                "WHERE batch = ? ORDER BY stage, persona_id LIMIT 10", [batch])
