"""Synthesis, instruction domain: a request the persona would type to an AI assistant."""

from personahub_assets.prompts.base import Template

TEMPLATE = Template(
    name="synthesis.instruction",
    version="1",
    instruction=(
        "Each persona below is followed by a message that this person might send to an AI "
        "assistant: a concrete request with the details that person would give."
    ),
    fields=(("persona", "Persona"),),
    output_label="User prompt",
    examples=(
        {
            "persona": "A high-school librarian who runs a graphic-novel reading club.",
            "output": (
                "Suggest six graphic novels for 14-year-olds about migration, with one "
                "discussion question for each, avoiding anything with graphic violence."
            ),
        },
        {
            "persona": "A freelance translator who works between Korean and Portuguese.",
            "output": (
                "Draft a polite email to a client explaining that my rate for legal documents "
                "is 30% higher than for marketing copy, and why."
            ),
        },
    ),
    max_tokens=80,
)
