"""Synthesis, tool domain: a function definition a persona's assistant would need."""

import json

from personahub_assets.prompts.base import Template

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 48},
        "description": {"type": "string", "minLength": 10, "maxLength": 200},
        "parameters": {
            "type": "object",
            "properties": {
                "type": {"const": "object"},
                "properties": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "type": {"enum": ["string", "number", "integer", "boolean"]},
                            "description": {"type": "string", "maxLength": 100},
                        },
                        "required": ["type", "description"],
                        "additionalProperties": False,
                    },
                },
                "required": {"type": "array", "items": {"type": "string", "maxLength": 40},
                             "maxItems": 3},
            },
            "required": ["type", "properties", "required"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "description", "parameters"],
    "additionalProperties": False,
}

TEMPLATE = Template(
    name="synthesis.tool",
    version="1",
    instruction=(
        "Each persona below is followed by one tool that an AI assistant working for this "
        "person would call, as a function definition in JSON: a snake_case name, a "
        "description, and its parameters as a JSON Schema object."
    ),
    fields=(("persona", "Persona"),),
    output_label="Tool",
    examples=(
        {
            "persona": "A dispatcher who plans routes for a fleet of refrigerated trucks.",
            "output": json.dumps({
                "name": "get_trailer_temperature",
                "description": "Return the current temperature inside a truck's trailer.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "truck_id": {"type": "string", "description": "Fleet number."},
                        "unit": {"type": "string", "description": "celsius or fahrenheit."},
                    },
                    "required": ["truck_id"],
                },
            }),
        },
        {
            "persona": "A piano teacher who schedules lessons for forty students.",
            "output": json.dumps({
                "name": "book_lesson",
                "description": "Book a piano lesson for a student in a free time slot.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "student": {"type": "string", "description": "Student's name."},
                        "minutes": {"type": "integer", "description": "Lesson length."},
                    },
                    "required": ["student", "minutes"],
                },
            }),
        },
    ),
    max_tokens=256,
    stop=(),
    json_schema=SCHEMA,
)
