"""Personas in any script and voice: length per script, first person, refusals and
non-personas in several languages, language detection, and dedup that uses embedding
evidence only where the encoder can see.

The persona sets below were written for these tests: in each language, distinct people
(some deliberately alike: same field, same city) and planted copies of some of them.
"""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.curation.coverage import encoder_coverage, script_coverage
from personahub_assets.lib.curation.embedding_dedup import (
    embedding_near_duplicates,
    embedding_near_duplicates_where_seen,
)
from personahub_assets.lib.curation.encoders import StaticEncoder
from personahub_assets.lib.curation.minhash import near_duplicates
from personahub_assets.lib.ingest.language import persona_language, word_units
from personahub_assets.lib.personas.validation import (
    hub_filter_reason,
    is_not_a_persona,
    is_refusal,
    validate_persona,
)

DATA = Path(__file__).parent / "data"

# language -> (distinct personas, planted copies as (index of the original, copy))
SETS = {
    "ru": ([
        "IT-специалист, который занимается архитектурой серверов и хранением данных в банке.",
        "Фитнес-инструктор, который ведёт утренние групповые занятия в парке у реки.",
        "Американский поклонник русской рок-музыки, который собирает виниловые пластинки.",
        "Инженер по контролю качества, который проверяет мобильные приложения перед выпуском.",
        "Государственный служащий, который оформляет документы на строительство жилья.",
        "Учительница математики из Казани, которая готовит школьников к олимпиадам.",
        "Медсестра ночной смены в детской больнице, которая учится на врача заочно.",
        "Фермер из Алтая, который выращивает гречиху и продаёт мёд на ярмарках.",
    ], [
        (0, "IT-специалист, который занимается архитектурой серверов и хранением данных в банке"),
        (1, "Опытный фитнес-инструктор, который ведёт утренние групповые занятия в парке у "
            "реки."),
        (5, "учительница математики из Казани, которая готовит школьников к олимпиадам."),
    ]),
    "ar": ([
        "مهندس برمجيات في دبي يطور تطبيقات للدفع عبر الهاتف المحمول.",
        "معلمة لغة عربية في عمّان تكتب قصصا قصيرة للأطفال في أوقات فراغها.",
        "طبيب أسنان في القاهرة يتطوع في عيادة مجانية يوم الجمعة.",
        "صياد سمك من صور يصلح قاربه بنفسه ويبيع صيده في السوق صباحا.",
        "طالبة هندسة معمارية في الرباط تهتم بترميم البيوت القديمة.",
        "مهندس برمجيات في الرياض يعمل على أنظمة أمن الشبكات للمستشفيات.",
    ], [
        (0, "مهندس برمجيات في دبي يطور تطبيقات للدفع عبر الهاتف المحمول"),
        (2, "طبيب أسنان في القاهرة يتطوع في عيادة مجانية كل يوم الجمعة."),
    ]),
    "zh": ([
        "一位在杭州经营茶馆的退休教师，喜欢和客人讨论宋代诗词。",
        "一名在深圳工作的软件测试工程师，业余时间在社区教老人用智能手机。",
        "一个痴迷于篮球数据分析的大学生，经常为校队制作比赛报告。",
        "一位在成都开火锅店的厨师，正在研究低辣度的新汤底。",
        "一名在北京医院工作的儿科护士，周末参加马拉松训练。",
        "一位在杭州经营书店的退休教师，喜欢为孩子们朗读童话故事。",
    ], [
        (0, "一位在杭州经营茶馆的退休教师，喜欢和客人讨论宋代诗词"),
        (1, "一名在深圳工作的软件测试工程师，业余时间在社区里教老人用智能手机。"),
        (4, "一名在北京医院工作的儿科护士，周末参加马拉松训练！"),
    ]),
    "ja": ([
        "大阪で小さなパン屋を営み、地元の小麦だけを使うことにこだわる職人。",
        "札幌の高校で物理を教えながら、週末は天体観測会を開いている教師。",
        "東京の広告代理店で働き、休日は古い映画のポスターを集めているデザイナー。",
        "京都で着物の修復を請け負い、若い職人の育成にも力を入れている女性。",
        "大阪で小さな喫茶店を営み、自家焙煎の豆にこだわる店主。",
    ], [
        (0, "大阪で小さなパン屋を営み、地元の小麦だけを使うことにこだわる職人"),
        (1, "札幌の高校で物理を教えながら、毎週末は天体観測会を開いている教師。"),
    ]),
    "en": ([
        "I am a night-shift nurse at a children's hospital in Leeds, studying for a midwifery "
        "degree.",
        "I'm a retired bus driver from Glasgow who now restores old bicycles for charity.",
        "We run a small family vineyard in Oregon and sell our wine at farmers' markets.",
        "I am a day-shift nurse at a care home in Leeds who coaches a youth netball team.",
        "My job is auditing the accounts of small charities, and I sing in a church choir.",
        "I teach chemistry at a secondary school in Cardiff and run its robotics club.",
    ], [
        (0, "I am a night-shift nurse at a children's hospital in Leeds, studying for a "
            "midwifery degree"),
        (1, "I'm a retired bus driver from Glasgow who now restores old bicycles for charity "
            "shops."),
        (5, "I teach chemistry at a secondary school in Cardiff and I run its robotics club."),
    ]),
}


def curate(texts: list[str], encoder) -> dict[int, str]:
    """Which texts curation drops and at which stage, as ``persona_hub`` decides: hub
    filters, exact (persona ID), MinHash at 0.9, embedding at 0.9 where the encoder sees."""
    dropped: dict[int, str] = {}
    first: set[str] = set()
    survivors = []
    for i, text in enumerate(texts):
        reason = hub_filter_reason(text)
        if reason:
            dropped[i] = f"filter:{reason}"
        elif persona_id(text) in first:
            dropped[i] = "exact"
        else:
            first.add(persona_id(text))
            survivors.append(i)
    for d in near_duplicates([texts[i] for i in survivors], 0.9):
        dropped[survivors[d.index]] = "minhash"
    after = [i for i in survivors if i not in dropped]
    batch = [texts[i] for i in after]
    split = embedding_near_duplicates_where_seen(encoder.encode(batch),
                                                 encoder_coverage(encoder, batch), 0.9)
    for d in split.duplicates:
        dropped[after[d.index]] = "embedding"
    return dropped


@pytest.fixture(scope="module")
def encoder():
    encoder = StaticEncoder(distill_if_missing=False, use_multiprocessing=False)
    try:
        encoder.encode(["warm up"])
    except FileNotFoundError:
        pytest.skip("the static model is not distilled (make install does it)")
    return encoder


@pytest.mark.parametrize("language", sorted(SETS))
def test_planted_copies_dropped_and_distinct_people_kept(language, encoder):
    distinct, copies = SETS[language]
    texts = distinct + [copy for _, copy in copies]
    dropped = curate(texts, encoder)
    assert all(validate_persona(text, "stop")[1] is None for text in texts)
    assert {i for i in dropped if i < len(distinct)} == set()  # no distinct pair merged
    assert set(dropped) == set(range(len(distinct), len(texts)))  # every copy caught
    assert all(persona_language(text) == language for text in distinct)


def test_the_english_encoder_merges_other_scripts_unless_coverage_stops_it(encoder):
    """The failure this guards against: distinct Russian people at cosine 0.9 and more."""
    distinct = SETS["ru"][0]
    vectors = encoder.encode(distinct)
    assert embedding_near_duplicates(vectors, 0.9), "the encoder no longer confuses them"
    coverage = encoder_coverage(encoder, distinct)
    assert coverage.max() < 0.1
    split = embedding_near_duplicates_where_seen(vectors, coverage, 0.9)
    assert split.duplicates == [] and split.unseen == list(range(len(distinct)))


def test_coverage_per_script_and_language(encoder):
    texts = ["A nurse who works night shifts in Leeds.", SETS["ru"][0][1], SETS["zh"][0][0],
             SETS["ar"][0][0], SETS["ja"][0][0],
             "Une infirmière de nuit à Lyon qui prépare un diplôme de sage-femme."]
    coverage = encoder_coverage(encoder, texts)
    assert coverage[0] > 0.9
    assert (coverage[1:] == 0).all()
    # a multilingual encoder you point to is trusted with every script it was told about
    assert script_coverage(texts, None).min() == 1.0
    assert list(script_coverage(["abc абв"], ["latin"])) == [0.5]


@pytest.mark.parametrize(
    ("text", "units"),
    [("A nurse who works nights", 5.0), ("台灣環保人士", 4.0), ("篮球评论员", 5 / 1.5),
     ("ガーデニングが大好きです", 4.8), ("मैं एक शिक्षक हूँ", 4.0),
     ("مهندس برمجيات في دبي", 4.0), ("Фитнес-инструктор в парке", 4.0)],
)
def test_word_units_per_script(text, units):
    assert word_units(text) == pytest.approx(units)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("台灣環保人士", ("台灣環保人士", None)),  # 6 characters, about 4 words
        ("学生", (None, "too_short")),
        ("I am a die-hard QPR fan who attends every match.", (
            "I am a die-hard QPR fan who attends every match.", None)),
        ("IT специалист, занимающийся архитектурой серверов.", (
            "IT специалист, занимающийся архитектурой серверов.", None)),
    ],
)
def test_validate_persona_in_any_script_and_voice(text, expected):
    assert validate_persona(text, "stop") == expected


@pytest.mark.parametrize(
    "text",
    ["I'm sorry, but I can't help with that request.",
     "抱歉，我无法提供这个人物的描述。",
     "申し訳ありませんが、その依頼にはお答えできません。",
     "Извините, я не могу помочь с этим запросом.",
     "عذراً، لا أستطيع المساعدة في هذا الطلب.",
     "Lo siento, no puedo ayudar con esa solicitud.",
     "Je suis désolé, je ne peux pas aider avec cette demande.",
     "Es tut mir leid, dabei kann ich nicht helfen.",
     "As an AI language model, I do not have a persona."],
)
def test_refusals_in_many_languages(text):
    assert is_refusal(text)
    assert hub_filter_reason(text) == "refusal_or_instruction"


@pytest.mark.parametrize(
    "text",
    ["I can't start the day without a long run along the canal.",
     "Я не могу представить жизнь без музыки и играю на виолончели.",
     "我无法忘记童年时在外婆家度过的夏天，现在是一名乡村教师。",
     "A sorry-looking but cheerful street musician in Lisbon."],
)
def test_first_person_statements_are_not_refusals(text):
    assert not is_refusal(text)
    assert hub_filter_reason(text) is None


@pytest.mark.parametrize(
    ("text", "not_a_persona"),
    [("Here is a persona: a baker in Porto who bakes rye bread.", True),
     ("This text describes a teacher who runs a robotics club.", True),
     ("以下是这段文字所描述的人物：一位退休教师。", True),
     ("これは記事の著者についての説明です。", True),
     ("Вот описание человека: учитель из Казани.", True),
     ("إليك وصف الشخصية: معلمة من عمان.", True),
     ("Voici une personne : une boulangère de Lyon.", True),
     ("It is a persona of a nurse working nights.", True),
     ("I am a medical student cramming for anatomy finals.", False),
     ("We have two kids and run a bakery in Porto.", False),
     ("IT manager who has little technical background.", False),
     ("私は大阪でパン屋を営んでいます。", False)],
)
def test_non_persona_openers_in_many_languages(text, not_a_persona):
    assert is_not_a_persona(text) is not_a_persona


def test_persona_language_of_short_texts():
    assert [persona_language(t) for t in [
        "a big fan of Frank Sinatra", "香港电影忠实粉丝", "大阪のパン職人", "서울의 바리스타",
        "Фитнес-инструктор из Казани", "معلمة لغة عربية في عمّان",
        "Ein Reiseblogger mit einer Vorliebe für versteckte Juwelen Europas", "12345"]] == [
        "en", "zh", "ja", "ko", "ru", "ar", "de", "und"]


def test_released_personahub_sample_loses_few_and_keeps_its_russian_people(encoder):
    """Public data we did not write: the 5,000 personas of the PersonaHub release's
    tool.jsonl (see data/README.md). Import validation and curation may lose at most 25."""
    with gzip.open(DATA / "personahub_tool_personas.jsonl.gz", "rt", encoding="utf-8") as fh:
        personas = [json.loads(line)["persona"] for line in fh]
    assert len(personas) == 5000
    imported = [p for p in personas if validate_persona(p, "stop")[0] is not None]
    dropped = curate(imported, encoder)
    lost = len(personas) - len(imported) + len(dropped)
    assert lost <= 25
    russian = [i for i, p in enumerate(imported) if persona_language(p) == "ru"]
    assert len(russian) >= 13 and not set(russian) & set(dropped)


def test_released_xpersona_profiles_are_not_merged_across_or_within_languages(encoder):
    """Public data we did not write: one XPersona profile per persona in seven languages."""
    rows = [json.loads(line) for line in
            (DATA / "xpersona_profiles.jsonl").read_text("utf-8").splitlines()]
    texts = [r["persona"] for r in rows if validate_persona(r["persona"], "stop")[1] is None]
    assert len(texts) >= 1030
    assert curate(texts, encoder) == {}
    languages = [persona_language(r["persona"]) for r in rows]
    agree = np.mean([a == r["language"] for a, r in zip(languages, rows, strict=True)])
    assert agree > 0.99


def test_drop_rates_by_language():
    from personahub_assets.lib.ingest.language import drop_rates_by_language

    rates = drop_rates_by_language(["en", "zh", "en", "ru", "en"], [True, False, True, True,
                                                                    False])
    assert list(rates) == ["en", "ru", "zh"]
    assert rates["en"] == {"in": 3, "kept": 2, "drop_rate": 0.3333}
    assert rates["zh"]["drop_rate"] == 1.0
