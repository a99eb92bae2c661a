"""Synthesis, knowledge domain: a short knowledge-rich text the persona would write."""

from personahub_assets.prompts.base import Template

TEMPLATE = Template(
    name="synthesis.knowledge",
    version="1",
    instruction=(
        "Each persona below is followed by a short, factual, knowledge-rich passage that this "
        "person could write for a reference article, explaining one concept from their field."
    ),
    fields=(("persona", "Persona"),),
    output_label="Passage",
    examples=(
        {
            "persona": "A glaciologist who measures ice loss on Alpine glaciers.",
            "output": (
                "A glacier's mass balance is the difference between the snow it gains in the "
                "accumulation zone and the ice it loses to melt lower down; a negative balance "
                "over many years means the glacier is shrinking even if its front stays put."
            ),
        },
        {
            "persona": "A tax adviser who helps small bakeries with their bookkeeping.",
            "output": (
                "Depreciation spreads the cost of equipment such as an oven over its useful "
                "life, so a bakery that buys a large oven deducts part of its price each year "
                "rather than the whole amount at once."
            ),
        },
    ),
    max_tokens=128,
)
