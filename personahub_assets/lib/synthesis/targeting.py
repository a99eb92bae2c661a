"""Targeted synthesis: choose personas by attribute with a typed filter and optional quotas.

The filter is data (lists of taxonomy values and numbers), checked against the taxonomy and
applied in Python; no text from the user ever becomes SQL.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from personahub_assets.lib.personas.attributes import DOMAINS, EXPERTISE

QUOTA_ATTRIBUTES = ("domain", "expertise", "language")
NO_ATTRIBUTES = "no_attributes"


@dataclass(frozen=True)
class PersonaFilter:
    """Which personas synthesis uses. Empty lists mean "any"; ``quota`` caps the personas per
    value of ``quota_by`` (0 = no cap), and ``quotas`` sets a cap for single values."""

    domains: tuple[str, ...] = ()
    expertise: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    quota_by: str = ""
    quota: int = 0
    quotas: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = sorted(set(self.domains) - set(DOMAINS))
        if bad:
            raise ValueError(f"unknown domains {bad}; choose from {list(DOMAINS)}")
        bad = sorted(set(self.expertise) - set(EXPERTISE))
        if bad:
            raise ValueError(f"unknown expertise levels {bad}; choose from {list(EXPERTISE)}")
        bad = [lang for lang in self.languages
               if not (isinstance(lang, str) and lang.isalpha() and 2 <= len(lang) <= 3)]
        if bad:
            raise ValueError(f"languages must be ISO 639 codes like 'en', got {bad}")
        if self.quota_by and self.quota_by not in QUOTA_ATTRIBUTES:
            raise ValueError(f"quota_by must be one of {QUOTA_ATTRIBUTES}, got {self.quota_by!r}")
        if (self.quota or self.quotas) and not self.quota_by:
            raise ValueError("a quota needs quota_by (domain, expertise or language)")
        if self.quota < 0 or any(not isinstance(v, int) or v < 0 for v in self.quotas.values()):
            raise ValueError("quotas must be whole numbers >= 0")

    @property
    def is_active(self) -> bool:
        """True when the filter selects anything less than every persona."""
        return bool(self.domains or self.expertise or self.languages or self.quota
                    or self.quotas)

    def to_json(self) -> str:
        """The filter as stored in each sample's provenance."""
        data = asdict(self)
        data["quotas"] = dict(sorted(self.quotas.items()))
        return json.dumps(data, sort_keys=True)


def _cap(flt: PersonaFilter, value: Any) -> int | None:
    if not flt.quota_by:
        return None
    if value in flt.quotas:
        return flt.quotas[value]
    return flt.quota or None


def select_personas(
    personas: Sequence[Mapping[str, Any]], attributes: Mapping[str, Mapping[str, Any]],
    flt: PersonaFilter,
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """(personas kept, a summary: kept per quota value and dropped by reason).

    Personas are taken in the order given (callers pass them sorted by ID, so the choice is
    deterministic); a persona without attributes is dropped when the filter is active.
    """
    if not flt.is_active:
        return list(personas), {"kept": len(personas), "dropped": {}}
    kept: list[Mapping[str, Any]] = []
    dropped: Counter = Counter()
    per_value: Counter = Counter()
    for p in personas:
        attrs = attributes.get(p["persona_id"])
        if attrs is None:
            dropped[NO_ATTRIBUTES] += 1
            continue
        if flt.domains and attrs.get("domain") not in flt.domains:
            dropped["domain"] += 1
            continue
        if flt.expertise and attrs.get("expertise") not in flt.expertise:
            dropped["expertise"] += 1
            continue
        if flt.languages and attrs.get("language") not in flt.languages:
            dropped["language"] += 1
            continue
        if flt.quota_by:
            value = attrs.get(flt.quota_by)
            cap = _cap(flt, value)
            if cap is not None and per_value[value] >= cap:
                dropped[f"quota:{flt.quota_by}={value}"] += 1
                continue
            per_value[value] += 1
        kept.append(p)
    return kept, {"kept": len(kept), "dropped": dict(dropped),
                  **({"per_value": dict(per_value)} if flt.quota_by else {})}
