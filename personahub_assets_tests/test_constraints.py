"""Every constraint checker on a response that obeys it and one that does not."""

import json

import pytest

from personahub_assets.lib.synthesis.constraints import (
    INCOMPATIBLE,
    KINDS,
    check,
    compatible,
    draw_constraints,
    instruction_text,
    keyword_candidates,
    parse_constraints,
    sentences,
    verify,
    words,
)

# kind -> (params, a response that obeys, a response that does not)
CASES = {
    "min_words": ({"n": 5}, "one two three four five", "one two three four"),
    "max_words": ({"n": 4}, "one two three four", "one two three four five"),
    "max_sentences": ({"n": 2}, "First point. Second point!", "One. Two. Three?"),
    "include_keywords": ({"keywords": ["budget", "garden"]},
                         "The Budget for the garden is small.", "The budgets are small."),
    "avoid_keywords": ({"keywords": ["very", "just"]}, "It is justified and fine.",
                       "It is Very fine."),
    "bullet_list": ({"n": 3}, "* one\n* two\n- three", "* one\n* two\nand a closing line"),
    "json_format": ({}, '{"a": [1, 2]}', "{'a': 1}"),
    "title": ({}, "<<Spring Plan>>\nPlant early.", "<Spring Plan> Plant early."),
    "lowercase": ({}, "all quiet here.", "All quiet here."),
    "uppercase": ({}, "ALL LOUD HERE!", "ALL LOUD HERe!"),
    "no_commas": ({}, "No commas at all.", "Yes, one comma."),
    "end_phrase": ({"phrase": "Hope this helps."}, "Water twice a week. Hope this helps.  ",
                   "Hope this helps. Water twice a week."),
    "postscript": ({}, "Water twice a week.\n\nP.S. Mulch too.", "P.S. Only a postscript."),
    "quoted": ({}, '"Water twice a week."', 'Water "twice" a week.'),
}


def test_every_kind_has_a_case():
    assert set(CASES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_checker_accepts_and_rejects(kind):
    params, good, bad = CASES[kind]
    constraint = {"kind": kind, "params": params}
    assert check(good, constraint) is True
    assert check(bad, constraint) is False


def test_case_checkers_need_letters():
    assert not check("123 456", {"kind": "lowercase", "params": {}})
    assert not check("123 456", {"kind": "uppercase", "params": {}})


def test_json_in_a_fence_counts():
    assert check('```json\n{"x": 1}\n```', {"kind": "json_format", "params": {}})
    assert not check("```json\n{x: 1}\n```", {"kind": "json_format", "params": {}})


def test_words_and_sentences_in_other_scripts():
    assert words("Привет, мир! l'eau co-op") == ["Привет", "мир", "l'eau", "co-op"]
    assert len(sentences("Это одна. Это две! 3.5 stays one")) == 3


def test_blank_response_obeys_nothing():
    cons = [{"kind": "max_words", "params": {"n": 10}}, {"kind": "no_commas", "params": {}}]
    assert verify("", cons) == [False, False]
    assert verify(None, cons) == [False, False]
    assert verify("fine words", cons) == [True, True]


def test_draw_is_deterministic_and_compatible():
    request = "Plan a vegetable garden budget for my allotment with seasonal tasks."
    seen_sizes = set()
    for seed in range(300):
        a = draw_constraints(seed, request)
        assert a == draw_constraints(seed, request)
        assert 1 <= len(a) <= 3
        kinds = [c["kind"] for c in a]
        assert compatible(kinds), kinds
        seen_sizes.add(len(a))
        for c in a:
            assert c["text"] and c["kind"] in KINDS
            if c["kind"] == "include_keywords":
                assert set(c["params"]["keywords"]) <= set(keyword_candidates(request))
    assert seen_sizes == {1, 2, 3}
    assert draw_constraints(1, request) != draw_constraints(2, request) or \
        draw_constraints(3, request) != draw_constraints(4, request)


def test_every_kind_is_drawn_eventually():
    drawn = {c["kind"] for seed in range(500) for c in draw_constraints(seed, "budget plans")}
    assert drawn == set(KINDS)


def test_incompatible_pairs_are_never_drawn():
    for seed in range(500):
        kinds = [c["kind"] for c in draw_constraints(seed)]
        for i, a in enumerate(kinds):
            for b in kinds[i + 1:]:
                assert frozenset((a, b)) not in INCOMPATIBLE


def test_keywords_fall_back_without_content_words():
    for seed in range(200):
        for c in draw_constraints(seed, "do it"):
            if c["kind"] == "include_keywords":
                assert c["params"]["keywords"]


def test_instruction_text_appends_constraints():
    cons = draw_constraints(7, "Write a toast for my sister's wedding.")
    text = instruction_text("Write a toast for my sister's wedding.", cons)
    assert text.startswith("Write a toast")
    assert all(c["text"] in text for c in cons)


def test_parse_constraints_gives_reasons():
    cons = draw_constraints(3, "x")
    assert parse_constraints(json.dumps(cons)) == cons
    with pytest.raises(ValueError, match="not JSON"):
        parse_constraints("[{")
    with pytest.raises(ValueError, match="list of objects"):
        parse_constraints('{"kind": "title"}')
    with pytest.raises(ValueError, match="unknown constraint kind"):
        parse_constraints('[{"kind": "rhymes"}]')


def test_response_examples_obey_their_own_constraints():
    from personahub_assets.prompts import response

    for request, cons, answer in response.EXAMPLES:
        assert all(verify(answer, cons)), (request, verify(answer, cons))
    prompt = response.TEMPLATE.request({"instruction": "Plan a picnic. Use no commas."},
                                       seed=1).completion_prompt
    assert prompt.rstrip().endswith("Answer:")
