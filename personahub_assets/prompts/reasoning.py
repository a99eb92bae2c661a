"""Synthesis, reasoning domain: a logical reasoning puzzle set in the persona's world."""

from personahub_assets.prompts.base import Template

TEMPLATE = Template(
    name="synthesis.reasoning",
    version="1",
    instruction=(
        "Each persona below is followed by a logical reasoning problem set in that person's "
        "world. The problem states its facts and asks a question that follows from them by "
        "deduction."
    ),
    fields=(("persona", "Persona"),),
    output_label="Reasoning problem",
    examples=(
        {
            "persona": "A hospital scheduler who builds the weekly rota for night nurses.",
            "output": (
                "Ana, Ben and Cleo each work one night from Monday to Wednesday; Ben never "
                "works Monday and Cleo works the night after Ana. Who works on Wednesday?"
            ),
        },
        {
            "persona": "A sommelier who runs blind tastings at a wine bar in Lisbon.",
            "output": (
                "Of three glasses, exactly one holds port; the red one is not port, and the "
                "glass left of the red one is white wine. If port is not on the far left, "
                "which glass holds it?"
            ),
        },
    ),
    max_tokens=96,
)
