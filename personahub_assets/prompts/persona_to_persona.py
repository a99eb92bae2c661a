"""Persona-to-Persona: describe someone who stands in a close relationship to a persona."""

from __future__ import annotations

from personahub_assets.prompts.base import Template

#: Relations used for expansion; the paper's examples include patient, colleague, supplier.
RELATIONS = (
    "colleague", "client", "patient", "supplier", "student", "teacher", "child", "parent",
    "neighbour", "competitor", "manager", "friend",
)

TEMPLATE = Template(
    name="persona_to_persona",
    version="1",
    instruction=(
        "Each persona below is followed by a different person who stands in the given "
        "relationship to them. Describe that other person in one or two sentences: who they "
        "are and how their life touches the first person's."
    ),
    fields=(("persona", "Persona"), ("relation", "Relationship")),
    output_label="Related persona",
    examples=(
        {
            "persona": "A veterinarian who runs a two-room clinic for farm animals in rural Wales.",
            "relation": "supplier",
            "output": (
                "A sales representative for a livestock vaccine distributor who drives a route "
                "of remote clinics every week and knows each vet's stock by heart."
            ),
        },
        {
            "persona": "A backend engineer who maintains the payment service of a food "
                       "delivery app.",
            "relation": "colleague",
            "output": (
                "A site reliability engineer on the same team who is paged when checkout "
                "latency spikes and reviews every database migration."
            ),
        },
    ),
    persona_field=None,
    max_tokens=56,
    temperature=0.4,
    top_p=0.9,
    response_prefix="A",
)
