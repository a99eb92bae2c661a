"""Math verification: a worked solution that ends with the final answer."""

from personahub_assets.prompts.base import Template

TEMPLATE = Template(
    name="math_solution",
    version="1",
    instruction=(
        "Each math problem below is followed by a short worked solution on one line. The "
        "solution shows the key steps and ends with 'Answer:' and the final number."
    ),
    fields=(("problem", "Problem"),),
    output_label="Solution",
    examples=(
        {
            "problem": "A baker sells 12 boxes of 6 muffins and 4 single muffins. How many "
                       "muffins does she sell?",
            "output": "12 boxes of 6 muffins make 72 muffins, and 4 more give 76. Answer: 76",
        },
        {
            "problem": "A cyclist rides 45 km in 1.5 hours. What is her average speed in km/h?",
            "output": "Speed is distance over time: 45 / 1.5 = 30 km/h. Answer: 30",
        },
        {
            "problem": "A garden bed is 3 m by 2.5 m. Compost costs 4 dollars per square "
                       "metre. How much does compost for the bed cost?",
            "output": "The area is 3 * 2.5 = 7.5 square metres, and 7.5 * 4 = 30 dollars. "
                      "Answer: 30",
        },
    ),
    persona_field=None,
    max_tokens=128,
    temperature=0.7,
)
