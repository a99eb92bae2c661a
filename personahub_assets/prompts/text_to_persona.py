"""Text-to-Persona: describe a person likely to read, write, like or dislike a text."""

from __future__ import annotations

from personahub_assets.prompts.base import Template

#: For each role: the label of the answer and how the instruction phrases the relation.
ROLES = {
    "read": ("Likely reader", "would read it"),
    "write": ("Likely author", "would have written it"),
    "like": ("Likely fan", "would enjoy or agree with it"),
    "dislike": ("Likely critic", "would dislike or argue against it"),
}

_GRANULARITY = {
    "fine": "Be specific about the person's field, speciality and situation.",
    "coarse": "Keep it broad: an occupation or a stage of life is enough.",
}

# Each example text with one persona per role (all written for this project).
_EXAMPLES = (
    (
        "Our co-op's grain dryer burned 14% less propane this harvest after we re-insulated "
        "the plenum and switched the fan to a variable-speed drive. Payback on the drive was "
        "under two seasons at current prices.",
        {
            "read": "A Midwestern corn farmer who sits on the board of a small grain "
                    "cooperative and watches its energy bill.",
            "write": "A farm energy adviser who audits dryers and barns for agricultural "
                     "cooperatives.",
            "like": "A sales engineer for an industrial fan maker who promotes variable-speed "
                    "drives.",
            "dislike": "A propane distributor whose largest customers are grain farms.",
        },
    ),
    (
        "We observed that dropout applied to the key projections stabilised training of our "
        "300M-parameter model at long sequence lengths without hurting perplexity.",
        {
            "read": "A machine learning engineer who trains long-context language models at a "
                    "small startup.",
            "write": "A machine learning researcher who studies training stability of "
                     "transformer language models.",
            "like": "A graduate student who is trying to make attention layers train "
                    "reliably on a single GPU.",
            "dislike": "A reviewer who doubts results on small models that were never tested "
                       "at scale.",
        },
    ),
    (
        "Slow-cooked beans, a slab of cornbread and a pot of greens: Sunday supper at my "
        "grandmother's never cost more than a few dollars, and nobody left hungry.",
        {
            "read": "A young parent on a tight budget who looks for filling family dinners.",
            "write": "A retired school cook from Georgia who collects family recipes and "
                     "shares budget meals with her church group.",
            "like": "A food historian who records the home cooking of the American South.",
            "dislike": "A nutritionist who warns clients about salt and fat in traditional "
                       "comfort food.",
        },
    ),
)


def build(role: str = "read", granularity: str = "fine") -> Template:
    """The Text-to-Persona template for a role and a granularity (``fine`` or ``coarse``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}")
    if granularity not in _GRANULARITY:
        raise ValueError(f"granularity must be one of {sorted(_GRANULARITY)}")
    label, phrase = ROLES[role]
    return Template(
        name=f"text_to_persona.{role}.{granularity}",
        version="1",
        instruction=(
            "Each text is followed by a one-sentence description of the kind of person who "
            f"{phrase}. {_GRANULARITY[granularity]}"
        ),
        fields=(("text", "Text"),),
        output_label=label,
        examples=tuple({"text": text, "output": personas[role]} for text, personas in _EXAMPLES),
        persona_field=None,
        block_fields=frozenset({"text"}),
        max_tokens=48,
        temperature=0.3,
        top_p=0.9,
        response_prefix="A",
    )
