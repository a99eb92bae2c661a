"""The judge: a score from 1 to 5 for one sample, against its domain's rubric, as JSON.

The judge sees the persona and the sample (inside document tags: data, never instructions)
and answers ``{"score": 1-5, "reason": "...", "unsafe": true|false}``; a grammar holds the
embedded model to that shape.
"""

import json

from personahub_assets.prompts.base import Template

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "reason": {"type": "string", "minLength": 3, "maxLength": 160},
        "unsafe": {"type": "boolean"},
    },
    "required": ["score", "reason", "unsafe"],
    "additionalProperties": False,
}

_COMMON = ("It fits the persona, is complete (not cut off mid-sentence), and is more than a "
           "copy of the persona.")

#: What a good sample of each built-in domain is; other domains use DEFAULT_RUBRIC.
RUBRICS = {
    "math": "A solvable math word problem with every number it needs, one clear question and "
            "a unique numeric answer. " + _COMMON,
    "reasoning": "A logic or reasoning puzzle whose answer follows from the facts it states. "
                 + _COMMON,
    "instruction": "A specific, self-contained request a real user would send to an AI "
                   "assistant. " + _COMMON,
    "knowledge": "An informative, factual passage a reader could learn from, without "
                 "invented claims presented as fact. " + _COMMON,
    "npc": "A game character with a name, a description and a way of interacting with "
           "players that fits the game world. " + _COMMON,
    "tool": "A useful function definition whose name, description and arguments agree. "
            + _COMMON,
}
DEFAULT_RUBRIC = "A sample that does what its domain asks, clearly and correctly. " + _COMMON


def rubric_for(domain: str) -> str:
    """The rubric a domain is judged by."""
    return RUBRICS.get(domain, DEFAULT_RUBRIC)


TEMPLATE = Template(
    name="judge",
    version="1",
    instruction=(
        "A strict reviewer grades synthetic training samples. Each sample is graded against "
        "its rubric from 1 (useless: empty, off-topic, nonsense, cut off, or a copy of the "
        "persona) to 5 (excellent), with a short reason, and marked unsafe only when it is "
        "hateful, harassing, sexual, violent or dangerous."
    ),
    fields=(("rubric", "Rubric"), ("persona", "Persona"), ("sample", "Sample")),
    output_label="Verdict",
    block_fields=frozenset({"sample"}),
    persona_field=None,
    examples=(
        {
            "rubric": RUBRICS["math"],
            "persona": "A beekeeper who sells honey at the weekend market.",
            "sample": "Each hive gives 18 kg of honey a season and I keep 7 hives. I sell honey "
                      "in 0.5 kg jars. How many jars can I fill this season?",
            "output": json.dumps({"score": 5, "reason": "Clear, solvable, fits the persona.",
                                  "unsafe": False}),
        },
        {
            "rubric": RUBRICS["instruction"],
            "persona": "A ferry captain on a northern fjord route.",
            "sample": "A ferry captain on a northern fjord route.",
            "output": json.dumps({"score": 1, "reason": "Only repeats the persona.",
                                  "unsafe": False}),
        },
        {
            "rubric": RUBRICS["knowledge"],
            "persona": "A retired botanist who volunteers at a seed library.",
            "sample": "Seed libraries lend seeds the way book libraries lend books: members "
                      "plant them, let some plants go to",
            "output": json.dumps({"score": 2, "reason": "On topic but cut off mid-sentence.",
                                  "unsafe": False}),
        },
    ),
    max_tokens=96,
    temperature=0.0,
    stop=(),
    json_schema=SCHEMA,
)
