"""The safety screen: the shipped classifier's reason, the judge's reason, and clean text."""

import pytest

from personahub_assets.lib.quality.safety import (
    JUDGE_FLAGGED,
    OFFENSIVE_LANGUAGE,
    offensive_scores,
    screen,
)

CLEAN = "Plan a vegetable garden budget for my allotment, with seasonal tasks."
OFFENSIVE = "You are a stupid idiot and I hate you."


def test_offensive_text_is_flagged_with_the_classifier_reason():
    clean, bad = screen([CLEAN, OFFENSIVE])
    assert (clean.flag, clean.reason) == (False, None)
    assert (bad.flag, bad.reason) == (True, OFFENSIVE_LANGUAGE)
    assert bad.score >= 0.8 > clean.score


def test_one_offensive_sentence_is_not_diluted_by_a_long_text():
    long_text = " ".join([CLEAN] * 12) + " " + OFFENSIVE
    assert screen([long_text])[0].reason == OFFENSIVE_LANGUAGE


def test_judge_flag_is_the_second_reason():
    verdicts = screen([CLEAN, CLEAN, OFFENSIVE], judge_flags=[True, None, True])
    assert [(v.flag, v.reason) for v in verdicts] == [
        (True, JUDGE_FLAGGED), (False, None), (True, OFFENSIVE_LANGUAGE)]


def test_blank_and_missing_texts_score_zero():
    assert offensive_scores(["", None, "   "]) == [0.0, 0.0, 0.0]
    assert [v.flag for v in screen(["", None])] == [False, False]


def test_threshold_moves_the_line():
    mild = "What the heck is this rubbish, you fool."
    score = offensive_scores([mild])[0]
    assert screen([mild], threshold=max(score - 0.01, 0.01))[0].flag
    assert not screen([mild], threshold=min(score + 0.01, 1.0))[0].flag or score > 0.99


def test_bad_arguments_have_reasons():
    with pytest.raises(ValueError, match="threshold"):
        screen([CLEAN], threshold=0)
    with pytest.raises(ValueError, match="one entry per text"):
        screen([CLEAN], judge_flags=[True, False])
