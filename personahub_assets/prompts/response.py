"""Instruction responses: the assistant's answer to a request that carries constraints."""

from personahub_assets.lib.synthesis.constraints import KINDS, instruction_text
from personahub_assets.prompts.base import Template


def _constraint(kind: str, **params) -> dict:
    return {"kind": kind, "params": params, "text": KINDS[kind].phrase(params)}


#: (request, constraints, response) worked examples; a test checks each response obeys them.
EXAMPLES = (
    ("Suggest a weekend routine for practising the cello.",
     [_constraint("max_words", n=40), _constraint("no_commas")],
     "Play scales for twenty minutes on Saturday morning and then work slowly through one "
     "etude. On Sunday record a short piece and listen back for tuning before a relaxed run."),
    ("Explain why bread dough needs to rest before baking.",
     [_constraint("include_keywords", keywords=["gluten", "yeast"]),
      _constraint("end_phrase", phrase="Hope this helps.")],
     "Resting lets the gluten relax so the dough stretches instead of tearing, and it gives "
     "the yeast time to make the gas that lifts the loaf. Hope this helps."),
    ("Name two warm-up exercises for an amateur choir.",
     [_constraint("json_format")],
     '{"exercises": ["lip trills on a five-note scale", "humming slides from low to high"]}'),
)

TEMPLATE = Template(
    name="instruction_response",
    version="1",
    instruction=(
        "Each request below is followed by a helpful answer from an AI assistant. The answer "
        "does what the request asks and obeys every rule written after the request."
    ),
    fields=(("instruction", "Request"),),
    output_label="Answer",
    examples=tuple({"instruction": instruction_text(request, cons), "output": response}
                   for request, cons, response in EXAMPLES),
    persona_field=None,
    max_tokens=120,
    temperature=0.7,
)
