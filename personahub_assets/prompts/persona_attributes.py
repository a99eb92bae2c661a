"""Persona attributes: occupation, domain and expertise of a persona, as JSON on the taxonomy."""

import json

from personahub_assets.lib.personas.attributes import DOMAINS, EXPERTISE
from personahub_assets.prompts.base import Template

SCHEMA = {
    "type": "object",
    "properties": {
        "occupation": {"type": "string", "minLength": 2, "maxLength": 48},
        "domain": {"enum": list(DOMAINS)},
        "expertise": {"enum": list(EXPERTISE)},
    },
    "required": ["occupation", "domain", "expertise"],
    "additionalProperties": False,
}

TEMPLATE = Template(
    name="persona_attributes",
    version="1",
    instruction=(
        "Each persona below is described by its occupation, the domain it works in (one of: "
        + ", ".join(DOMAINS) + ") and its level of expertise (novice, intermediate or "
        "expert), as JSON."
    ),
    fields=(("persona", "Persona"),),
    output_label="Attributes",
    examples=(
        {"persona": "A night-shift nurse in Lagos who trains new ward staff.",
         "output": json.dumps({"occupation": "nurse", "domain": "health",
                               "expertise": "expert"})},
        {"persona": "A second-year economics student who sells vintage clothes online.",
         "output": json.dumps({"occupation": "student", "domain": "business_finance",
                               "expertise": "novice"})},
        {"persona": "A carpenter in Quebec who restores wooden canoes.",
         "output": json.dumps({"occupation": "carpenter", "domain": "trades_industry",
                               "expertise": "intermediate"})},
    ),
    persona_field=None,
    max_tokens=48,
    temperature=0.0,
    stop=(),
    json_schema=SCHEMA,
)
