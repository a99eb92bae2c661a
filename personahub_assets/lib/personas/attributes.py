"""Persona attributes: occupation, domain, expertise and language, and the taxonomy they use.

The domain taxonomy is fixed so that filters, quotas and plots mean the same thing on every
run. Attributes come from one of three places, recorded in ``attribute_source``:

- ``import``: the fields an imported persona set carries (PersonaHub's elite personas give a
  general and a specific domain at the top 1 % and 0.1 %; other sets may give occupation,
  domain, expertise or language directly);
- ``model``: a structured-output call (a grammar holds the model to the taxonomy);
- ``rules``: keyword rules over the persona text, the fallback when the model's answer does
  not parse, and a model-free pass of its own.

Language is always detected from the persona text unless the source names it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from personahub_assets.lib.ingest.language import detect_language

#: The persona domains, with the words that point to each (lower case, whole words or stems).
DOMAIN_KEYWORDS: dict[str, tuple[str, ...]] = {
    "science_math": ("physic", "chemist", "biolog", "mathemat", "statistic", "scientist",
                     "astronom", "research", "geolog", "ecolog", "laborator", "botan"),
    "technology": ("software", "developer", "engineer", "programm", "data ", "computer",
                   "network", "cyber", "robot", " ai ", "machine learning", "web ", "it "),
    "health": ("nurse", "doctor", "physician", "medic", "health", "clinic", "hospital",
               "therap", "pharmac", "dentist", "paediatr", "pediatr", "surgeon", "patient",
               "first-aid", "psycholog", "nutrition"),
    "education": ("teacher", "professor", "school", "tutor", "lecturer", "educat", "student",
                  "librarian", "classroom", "curriculum", "university"),
    "business_finance": ("business", "entrepreneur", "account", "financ", "bank", "market",
                         "sales", "investor", "economist", "startup", "manager", "retail",
                         "shop", "trader"),
    "law_government": ("lawyer", "attorney", "legal", "judge", "law ", "policy", "politic",
                       "government", "civil servant", "diplomat", "police", "council"),
    "arts_media": ("artist", "music", "writer", "author", "journalist", "design", "film",
                   "photograph", "painter", "poet", "actor", "novel", "theatre", "media",
                   "editor", "illustrat"),
    "humanities_society": ("histor", "philosoph", "linguist", "translator", "sociolog",
                           "anthropolog", "religio", "archiv", "museum", "social worker",
                           "volunteer", "activist", "community"),
    "trades_industry": ("mechanic", "electrician", "plumber", "carpenter", "welder",
                        "construction", "factory", "diesel", "engine", "craft", "builder",
                        "technician", "ferry", "driver", "logistic", "pilot"),
    "agriculture_environment": ("farm", "agricult", "garden", "forest", "fisher", "sheep",
                                "livestock", "climate", "environment", "conservation", "wool",
                                "crop", "beekeep", "water"),
    "sports_leisure": ("athlete", "coach", "sport", "fitness", "football", "runner", "chess",
                       "game", "hobby", "travel", "rocketry", "climb", "cycling"),
    "hospitality_services": ("chef", "cook", "restaurant", "hotel", "bakery", "baker",
                             "barista", "tourism", "cleaner", "caregiver", "hairdress",
                             "waiter"),
}
#: Every domain value a persona can have; ``other`` when nothing points anywhere.
DOMAINS: tuple[str, ...] = (*DOMAIN_KEYWORDS, "other")
#: Expertise levels, lowest first.
EXPERTISE: tuple[str, ...] = ("novice", "intermediate", "expert")

_EXPERT = re.compile(r"\b(senior|expert|professor|veteran|retired|chief|head|lead|renowned|"
                     r"specialist|master|phd|doctor|decades?|experienced|award)\b", re.I)
_NOVICE = re.compile(r"\b(student|beginner|novice|trainee|apprentice|intern|aspiring|"
                     r"first[- ]year|new to|learning|hobbyist|amateur|young)\b", re.I)
_ROLE_END = re.compile(r"\s+(?:in|at|from|who|with|for|on|of|living|based|that|whose)\b|[,;.(]")
_ARTICLE = re.compile(r"^(?:an?|the)\s+", re.I)
_NOT_A_ROLE = frozenset({"someone", "somebody", "person", "individual", "man", "woman",
                         "people"})
#: Field names of the PersonaHub elite release, most specific first.
ELITE_DOMAIN_FIELDS = ("specific domain (top 0.1 percent)", "specific domain (top 1 percent)",
                       "general domain (top 0.1 percent)", "general domain (top 1 percent)")


def domain_from_text(text: str) -> str:
    """The taxonomy domain whose keywords occur most often in ``text`` (``other`` if none;
    ties go to the domain listed first)."""
    lowered = f" {text.lower()} "
    hits = {d: sum(lowered.count(k) for k in keys) for d, keys in DOMAIN_KEYWORDS.items()}
    best = max(hits.values())
    return next(d for d, n in hits.items() if n == best) if best else "other"


def expertise_from_text(text: str) -> str:
    """``expert`` or ``novice`` when the text says so, else ``intermediate``."""
    if _NOVICE.search(text):
        return "novice"
    if _EXPERT.search(text):
        return "expert"
    return "intermediate"


def occupation_from_text(text: str) -> str | None:
    """The role a persona opens with: "A retired ferry engineer in Bergen who..." -> "retired
    ferry engineer"; ``None`` when the text does not open with a short role."""
    head = _ARTICLE.sub("", text.strip())
    role = _ROLE_END.split(head, maxsplit=1)[0].strip()
    if role.lower() in _NOT_A_ROLE:
        return None
    return role if 1 <= len(role.split()) <= 6 else None


def rule_attributes(text: str) -> dict[str, str | None]:
    """Occupation, domain and expertise from keyword rules alone."""
    return {"occupation": occupation_from_text(text), "domain": domain_from_text(text),
            "expertise": expertise_from_text(text)}


def normalize_model_attributes(parsed: Any) -> dict[str, str] | None:
    """A model's structured answer checked against the taxonomy, or ``None``."""
    if not isinstance(parsed, Mapping):
        return None
    occupation = parsed.get("occupation")
    domain, expertise = parsed.get("domain"), parsed.get("expertise")
    if not isinstance(occupation, str) or not occupation.strip():
        return None
    if domain not in DOMAINS or expertise not in EXPERTISE:
        return None
    return {"occupation": occupation.strip(), "domain": domain, "expertise": expertise}


def import_attributes(fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Attributes an imported record carries, mapped onto the taxonomy; ``None`` without any.

    Elite PersonaHub personas are, by construction, in the top 1 % of their domain: their
    expertise is ``expert``. Their free-text domain is mapped to the taxonomy by keywords.
    """
    if not fields:
        return None
    out: dict[str, Any] = {}
    elite = [str(fields[f]) for f in ELITE_DOMAIN_FIELDS if fields.get(f)]
    if elite:
        out["domain"] = next((d for d in map(domain_from_text, elite) if d != "other"), "other")
        out["expertise"] = "expert"
    if isinstance(fields.get("domain"), str):
        raw = fields["domain"].strip().lower()
        out["domain"] = raw if raw in DOMAINS else domain_from_text(raw)
    if isinstance(fields.get("expertise"), str) and fields["expertise"].lower() in EXPERTISE:
        out["expertise"] = fields["expertise"].lower()
    if isinstance(fields.get("occupation"), str) and fields["occupation"].strip():
        out["occupation"] = fields["occupation"].strip()
    if isinstance(fields.get("language"), str) and fields["language"].strip():
        out["language"] = fields["language"].strip().lower()
    return out or None


def needs_model(imported: Mapping[str, Any] | None) -> bool:
    """Whether an import left occupation, domain or expertise for the model to find."""
    return not {"occupation", "domain", "expertise"} <= set(imported or {})


def attribute_row(persona: Mapping[str, Any], batch: str, imported: Mapping[str, Any] | None,
                  model: Mapping[str, Any] | None, prov: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """One ``persona_attributes`` row: an import's fields beat the model's answer, which beats
    the keyword rules; the language is the import's or the detected one. ``prov`` is the
    model call's provenance (empty where no call was made)."""
    source = imported or {}
    attrs = {**rule_attributes(persona["persona"]), **(model or {}), **source}
    kind = "import" if source else "model" if model else "rules"
    return {"persona_id": persona["persona_id"], "batch": batch,
            "occupation": attrs.get("occupation"), "domain": attrs["domain"],
            "expertise": attrs["expertise"],
            "language": source.get("language") or detect_language(persona["persona"])[0],
            "attribute_source": kind, "source_fields": persona["source_fields"],
            **(prov or {"backend": "rules" if kind == "rules" else "import",
                        "model": None, "template": "persona_attributes_rules",
                        "template_version": "1", "sampling_params": "{}"})}


def dominant_share(domains: list[str]) -> tuple[str | None, float]:
    """The most common domain and its share of all personas."""
    if not domains:
        return None, 0.0
    value, n = Counter(domains).most_common(1)[0]
    return value, n / len(domains)
