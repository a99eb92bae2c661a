"""Persona attributes from rules and imports, and the typed filter with quotas."""

import json

import pytest

from personahub_assets.lib.personas.attributes import (
    DOMAINS,
    domain_from_text,
    dominant_share,
    expertise_from_text,
    import_attributes,
    normalize_model_attributes,
    occupation_from_text,
)
from personahub_assets.lib.synthesis.targeting import NO_ATTRIBUTES, PersonaFilter, select_personas

PERSONAS = [{"persona_id": f"p{i}", "persona": f"persona {i}"} for i in range(8)]
ATTRS = {
    "p0": {"domain": "health", "expertise": "expert", "language": "en"},
    "p1": {"domain": "health", "expertise": "novice", "language": "en"},
    "p2": {"domain": "health", "expertise": "expert", "language": "de"},
    "p3": {"domain": "education", "expertise": "expert", "language": "en"},
    "p4": {"domain": "education", "expertise": "intermediate", "language": "en"},
    "p5": {"domain": "technology", "expertise": "expert", "language": "en"},
    "p6": {"domain": "health", "expertise": "expert", "language": "en"},
}  # p7 has no attributes


def _ids(kept):
    return [p["persona_id"] for p in kept]


def test_inactive_filter_keeps_everyone():
    kept, summary = select_personas(PERSONAS, ATTRS, PersonaFilter())
    assert _ids(kept) == [p["persona_id"] for p in PERSONAS]
    assert summary == {"kept": 8, "dropped": {}}


def test_filter_by_domain_expertise_and_language():
    flt = PersonaFilter(domains=("health",), expertise=("expert",), languages=("en",))
    kept, summary = select_personas(PERSONAS, ATTRS, flt)
    assert _ids(kept) == ["p0", "p6"]
    assert summary["dropped"] == {"domain": 3, "expertise": 1, "language": 1,
                                  NO_ATTRIBUTES: 1}


def test_quota_balances_values():
    flt = PersonaFilter(quota_by="domain", quota=1)
    kept, summary = select_personas(PERSONAS, ATTRS, flt)
    assert _ids(kept) == ["p0", "p3", "p5"]
    assert summary["per_value"] == {"health": 1, "education": 1, "technology": 1}
    assert summary["dropped"]["quota:domain=health"] == 3


def test_per_value_quotas_override_the_default():
    flt = PersonaFilter(quota_by="expertise", quota=1, quotas={"expert": 2, "novice": 0})
    kept, _ = select_personas(PERSONAS, ATTRS, flt)
    assert _ids(kept) == ["p0", "p2", "p4"]


@pytest.mark.parametrize("kwargs, message", [
    ({"domains": ("medicine",)}, "unknown domains"),
    ({"expertise": ("guru",)}, "unknown expertise"),
    ({"languages": ("en'; DROP TABLE x; --",)}, "ISO 639"),
    ({"quota": 2}, "needs quota_by"),
    ({"quota_by": "age", "quota": 2}, "quota_by must be"),
    ({"quota_by": "domain", "quota": -1}, ">= 0"),
])
def test_bad_filters_have_reasons(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PersonaFilter(**kwargs)


def test_filter_json_is_stable():
    a = PersonaFilter(domains=("health",), quota_by="language", quotas={"en": 2, "de": 1})
    b = PersonaFilter(domains=("health",), quota_by="language", quotas={"de": 1, "en": 2})
    assert a.to_json() == b.to_json()
    assert json.loads(a.to_json())["domains"] == ["health"]


def test_rule_attributes():
    text = "A retired ferry engineer in Bergen who restores old diesel engines in his garage."
    assert occupation_from_text(text) == "retired ferry engineer"
    assert domain_from_text(text) == "trades_industry"
    assert expertise_from_text(text) == "expert"
    assert domain_from_text("A paediatric nurse in Manila who runs first-aid classes.") == "health"
    assert expertise_from_text("A first-year student of chemistry.") == "novice"
    assert expertise_from_text("A shop owner.") == "intermediate"
    assert domain_from_text("Somebody.") == "other"
    assert occupation_from_text("Someone who, against all odds, went on") is None
    assert occupation_from_text("Passionate about tending bees and brewing mead every single "
                                "autumn") is None


def test_import_attributes_elite_shape_and_plain_fields():
    elite = {"id": 1, "general domain (top 1 percent)": "Medicine",
             "specific domain (top 1 percent)": "Paediatric nursing"}
    assert import_attributes(elite) == {"domain": "health", "expertise": "expert"}
    plain = {"occupation": "Baker", "domain": "hospitality_services", "expertise": "Novice",
             "language": "FR"}
    assert import_attributes(plain) == {"occupation": "Baker", "domain": "hospitality_services",
                                        "expertise": "novice", "language": "fr"}
    assert import_attributes({}) is None
    assert import_attributes({"unrelated": 1}) is None


def test_model_answers_are_held_to_the_taxonomy():
    good = {"occupation": " nurse ", "domain": "health", "expertise": "expert"}
    assert normalize_model_attributes(good) == {"occupation": "nurse", "domain": "health",
                                                "expertise": "expert"}
    assert normalize_model_attributes({**good, "domain": "medicine"}) is None
    assert normalize_model_attributes({**good, "occupation": ""}) is None
    assert normalize_model_attributes("nurse") is None


def test_dominant_share():
    assert dominant_share([]) == (None, 0.0)
    assert dominant_share(["health", "health", "education", "other"]) == ("health", 0.5)
    assert "other" in DOMAINS
