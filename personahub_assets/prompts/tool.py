"""Synthesis, tool domain: a function definition a persona's assistant would need.

The model writes a compact form (arguments as a bounded list, which a grammar can cap) and
:func:`to_function_definition` turns it into the OpenAI function-calling shape.
"""

import json
from typing import Any

from personahub_assets.prompts.base import Template

_TYPES = ["string", "number", "integer", "boolean"]

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 48},
        "description": {"type": "string", "minLength": 10, "maxLength": 120},
        "arguments": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 32},
                    "type": {"enum": _TYPES},
                    "description": {"type": "string", "minLength": 3, "maxLength": 60},
                    "required": {"type": "boolean"},
                },
                "required": ["name", "type", "description", "required"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["name", "description", "arguments"],
    "additionalProperties": False,
}


def to_function_definition(value: Any) -> Any:
    """The compact form as an OpenAI function definition; anything else is returned unchanged."""
    if not isinstance(value, dict) or not isinstance(value.get("arguments"), list):
        return value
    args = [a for a in value["arguments"] if isinstance(a, dict)]
    return {
        "name": value.get("name"),
        "description": value.get("description"),
        "parameters": {
            "type": "object",
            "properties": {a.get("name"): {"type": a.get("type"),
                                           "description": a.get("description")} for a in args},
            "required": [a.get("name") for a in args if a.get("required")],
        },
    }


def _example(name: str, description: str, *arguments: tuple[str, str, str, bool]) -> str:
    return json.dumps({
        "name": name,
        "description": description,
        "arguments": [{"name": n, "type": t, "description": d, "required": r}
                      for n, t, d, r in arguments],
    })


TEMPLATE = Template(
    name="synthesis.tool",
    version="1",
    instruction=(
        "Each persona below is followed by one tool that an AI assistant working for this "
        "person would call, written as JSON: a snake_case name, a description, and up to "
        "three arguments with their types."
    ),
    fields=(("persona", "Persona"),),
    output_label="Tool",
    examples=(
        {
            "persona": "A dispatcher who plans routes for a fleet of refrigerated trucks.",
            "output": _example(
                "get_trailer_temperature",
                "Return the current temperature inside a truck's trailer.",
                ("truck_id", "string", "Fleet number of the truck.", True),
                ("unit", "string", "celsius or fahrenheit.", False),
            ),
        },
        {
            "persona": "A piano teacher who schedules lessons for forty students.",
            "output": _example(
                "book_lesson",
                "Book a piano lesson for a student in a free time slot.",
                ("student", "string", "The student's full name.", True),
                ("minutes", "integer", "Length of the lesson.", True),
            ),
        },
    ),
    max_tokens=160,
    temperature=0.3,
    stop=(),
    json_schema=SCHEMA,
    convert=to_function_definition,
)
