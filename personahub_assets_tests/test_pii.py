import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personahub_assets.lib.personas.pii import find_pii, redact


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("A nurse you can reach at jane.doe+work@clinic.example.org on weekdays.", ["email"]),
        ("A plumber whose site is www.fixitfast.com and who works nights.", ["url"]),
        ("A baker, call him on +44 20 7946 0958 for orders.", ["phone"]),
        ("A clerk, call (555) 123-4567 for the office.", ["phone"]),
        ("A veteran with SSN 123-45-6789 on file.", ["id_number"]),
        ("A trader with account 4111111111111111 at the bank.", ["id_number"]),
        ("A bookkeeper with IBAN GB82 WEST 1234 5698 7654 32 in her notes.", ["id_number"]),
    ],
)
def test_pii_is_found(text, kinds):
    assert find_pii(text) == kinds


@pytest.mark.parametrize(
    "text",
    [
        "A civil engineer who inspects 42 bridges a year and has worked for 30 years.",
        "A teacher of 7th-grade maths who grades 120 papers by 9.30 every Monday.",
        "A data scientist who trained a 300M-parameter model in 2024.",
        "A runner who finished the 2019 marathon in 3:05:12.",
    ],
)
def test_ordinary_personas_are_clean(text):
    assert find_pii(text) == []


def test_redact():
    assert redact("Write to a@b.example.com now") == "Write to [EMAIL] now"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .@-+()/:wWcomrgnetiuk0123456789_")),
               max_size=60))
def test_quick_rejection_never_changes_the_answer(text):
    from personahub_assets.lib.personas.pii import _scan

    assert find_pii(text) == _scan(text)
