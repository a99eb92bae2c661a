"""What text_personas and relation_personas share: their checks, rows and metadata."""

from collections import Counter
from typing import Any

from dagster import (
    AssetCheckResult,
)

from personahub_assets import previews
from personahub_assets.assets.common import check_result
from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.ingest.language import persona_language
from personahub_assets.lib.personas import queries
from personahub_assets.lib.personas.validation import validate_persona
from personahub_assets.lib.synthesis.generation import provenance, summarize
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource


def provenance_check(name: str, asset_key: str, warehouse: WarehouseResource, method: str,
                      batch: str) -> AssetCheckResult:
    missing = queries.missing_provenance(warehouse.rows, method, batch)
    return check_result(name, missing == 0, {"rows_missing_provenance": missing},
                        asset_key=asset_key)


def accounting_check(name: str, asset_key: str, warehouse: WarehouseResource, method: str,
                      batch: str, attempted: int) -> AssetCheckResult:
    stored = queries.stored_persona_counts(warehouse.rows, method, batch)
    return check_result(name, attempted == stored["kept"] + stored["rejected"],
                        {"attempted": attempted, **stored}, asset_key=asset_key)


def persona_rows(
    items: list[dict[str, Any]], results: list, requests: list, llm: LLMResource,
    sources: list[str | None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split generated personas into kept rows and rejected rows (with reasons).

    Each item names its ``template`` and ``template_version`` for the provenance columns.
    """
    kept, rejected = [], []
    for item, req, res, source in zip(items, requests, results, sources, strict=True):
        prov = provenance(llm.backend, llm.model_name, item.pop("template"),
                          item.pop("template_version"), req, res)
        if res.error is not None:
            persona, reason = None, "llm_error"
        else:
            persona, reason = validate_persona(res.text, res.finish_reason, source)
        if persona is None:
            rejected.append({**item, **prov, "raw_output": res.text or res.error, "reason": reason})
        else:
            kept.append({**item, **prov, "persona": persona, "persona_id": persona_id(persona),
                         "language": persona_language(persona)})
    return kept, rejected


def persona_metadata(kept, rejected, results) -> dict[str, Any]:
    lengths = sorted(len(p["persona"].split()) for p in kept)
    total = len(kept) + len(rejected)

    def pct(q: float) -> int:
        return lengths[min(int(q * len(lengths)), len(lengths) - 1)] if lengths else 0

    return {
        "persona_words_p10": pct(0.1),
        "persona_words_p50": pct(0.5),
        "persona_words_p90": pct(0.9),
        "refusal_rate": round(sum(r["reason"] == "refusal" for r in rejected) / total, 4)
        if total else 0.0,
        "personas_kept": len(kept),
        "personas_rejected": len(rejected),
        "invalid_rate": round(len(rejected) / total, 4) if total else 0.0,
        "mean_persona_words": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "languages": previews.language_table(
            [p["language"] for p in kept] + [persona_language(str(r.get("raw_output") or ""))
                                            for r in rejected],
            [True] * len(kept) + [False] * len(rejected)),
        "rejection_reasons": previews.counts(Counter(r["reason"] for r in rejected)),
        **summarize(results),
    }
