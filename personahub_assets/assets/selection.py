"""Targeted synthesis: the typed persona filter of the synthesis config, applied to hub rows."""

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import Config
from pydantic import Field

from personahub_assets.lib.personas.queries import attributes_of
from personahub_assets.lib.synthesis.targeting import PersonaFilter, select_personas
from personahub_assets.resources.warehouse import WarehouseResource


class PersonaSelection(Config):
    """Which personas synthesis writes from (empty lists = any). Values come from the
    persona_attributes taxonomy; quotas cap personas per value for balanced sets."""

    domains: list[str] = Field(default=[], description="Persona domains to keep.")
    expertise: list[str] = Field(default=[], description="novice, intermediate, expert.")
    languages: list[str] = Field(default=[], description="ISO 639-1 codes, e.g. en, de.")
    quota_by: str = Field(default="", description="domain, expertise or language.")
    quota: int = Field(default=0, description="Personas per value of quota_by (0 = no cap).")
    quotas: dict[str, int] = Field(default={}, description="Caps for single values.")

    def to_filter(self) -> PersonaFilter:
        """The typed filter; raises ValueError with the reason when a value is unknown."""
        return PersonaFilter(tuple(self.domains), tuple(self.expertise), tuple(self.languages),
                             self.quota_by, self.quota, dict(self.quotas))


def select_for_synthesis(
    warehouse: WarehouseResource, personas: Sequence[Mapping[str, Any]],
    selection: PersonaSelection,
) -> tuple[list[Mapping[str, Any]], str | None, dict[str, Any]]:
    """(personas kept, the filter as JSON for provenance or None, a summary)."""
    flt = selection.to_filter()
    if not flt.is_active:
        return list(personas), None, {"kept": len(personas), "dropped": {}}
    attributes = attributes_of(warehouse.rows, [p["persona_id"] for p in personas])
    kept, summary = select_personas(personas, attributes, flt)
    return kept, flt.to_json(), summary
