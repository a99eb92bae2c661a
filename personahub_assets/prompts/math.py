"""Synthesis, math domain: a math problem that the persona would pose or meet."""

from personahub_assets.prompts.base import Template

TEMPLATE = Template(
    name="synthesis.math",
    version="1",
    instruction=(
        "Each persona below is followed by a challenging math word problem drawn from that "
        "person's daily work or interests. The problem is self-contained, uses concrete "
        "numbers and asks for one numerical answer."
    ),
    fields=(("persona", "Persona"),),
    output_label="Math problem",
    examples=(
        {
            "persona": "A beekeeper in Provence who sells lavender honey at weekend markets.",
            "output": (
                "Each of my 18 hives yields 22 kg of honey a season and I lose 6% when "
                "filtering; if I fill 250 g jars, how many full jars can I sell?"
            ),
        },
        {
            "persona": "A civil engineer who inspects pedestrian bridges for a city council.",
            "output": (
                "A footbridge deck is 42 m long and 3.5 m wide and must carry 5 kN per square "
                "metre; what total load in kilonewtons must its two supports share?"
            ),
        },
    ),
    max_tokens=96,
)
