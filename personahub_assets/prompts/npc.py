"""Synthesis, NPC domain: a non-player character of a game world, drawn from a persona."""

import json

from personahub_assets.prompts.base import Template

#: The default game world; users set their own through the synthesis config.
DEFAULT_WORLD = (
    "Saltmarrow, a trading town built on stilts over a tidal marsh, where guilds of "
    "eel-fishers, glassblowers and lantern-makers compete for the favour of a drowned "
    "queen's court."
)

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 40},
        "description": {"type": "string", "minLength": 15, "maxLength": 240},
        "interaction": {"type": "string", "minLength": 15, "maxLength": 240},
    },
    "required": ["name", "description", "interaction"],
    "additionalProperties": False,
}

TEMPLATE = Template(
    name="synthesis.npc",
    # 2: the grammar enforces the lengths the validator checks (a one-character name passed
    # the grammar and failed validation).
    version="2",
    instruction=(
        "Each persona below is turned into a non-player character of the given game world. "
        "The character is written as JSON with a name, a description and how the character "
        "interacts with players."
    ),
    fields=(("world", "Game world"), ("persona", "Persona")),
    output_label="NPC",
    examples=(
        {
            "world": DEFAULT_WORLD,
            "persona": "A night-shift nurse who keeps everyone calm during emergencies.",
            "output": json.dumps({
                "name": "Sister Wenna Reedlight",
                "description": "A healer who tends the stilt-town's fevered fishers by "
                               "lantern light and never raises her voice.",
                "interaction": "Patches up wounded players for a few eels and warns them "
                               "about which marsh paths flood at night.",
            }),
        },
        {
            "world": DEFAULT_WORLD,
            "persona": "A used-car dealer who always has a deal that ends today.",
            "output": json.dumps({
                "name": "Oskar Twelvecoin",
                "description": "A glib boat trader whose skiffs are freshly painted over "
                               "their leaks.",
                "interaction": "Offers players boats at a 'today only' price and haggles "
                               "harder the more they hesitate.",
            }),
        },
    ),
    max_tokens=200,
    stop=(),
    json_schema=SCHEMA,
)
