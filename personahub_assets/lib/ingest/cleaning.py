"""Document cleaning: every document is either kept (cleaned) or rejected with a reason.

Steps, in order: type check and raw-size guard, binary check, HTML main-text extraction
(trafilatura), broken Unicode repair (ftfy), whitespace normalization, length bounds on the
*extracted* text, web-quality heuristics, and language identification. Each step that rejects
says why.

:func:`clean_batch` cleans a whole batch at once: the checks and the normalization are polars
expressions over the batch, and only what has no vectorized form runs per document (HTML
extraction, ftfy on the texts that can need it, language identification).
:func:`clean_document` is the same pipeline on one document.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa

from personahub_assets.lib.common.ids import doc_id, normalize_text, stable_hash
from personahub_assets.lib.ingest.language import detect_language
from personahub_assets.lib.ingest.records import PREVIEW_CHARS, SourceRecord, SourceRejection

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")

# The same steps as polars (Rust) regular expressions.
_PL_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_PL_BINARY = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffd}]"
_PL_LINE_EDGES = r"(?m)^[^\S\n]+|[^\S\n]+$"
# ftfy can change only texts with a character outside printable ASCII, or something like an
# HTML entity; every other text goes past it untouched.
_PL_MAY_NEED_FTFY = r"[^\t\n\r\x20-\x7e]|&#?[0-9A-Za-z]{1,24}"
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
_PL_LETTER = r"[\p{L}\p{M}]"
_PL_SPACED_LETTER = rf"[\p{{L}}\p{{M}}--[{_UNSPACED}]]"

#: Default bound on one raw input, before extraction: 32 million characters. Real pages of
#: 0.5 to 1 MB of HTML hold a few thousand characters of text; the length rules apply to that.
MAX_RAW_CHARS = 32_000_000
_MIN_PARALLEL = 4096


@dataclass(frozen=True)
class CleaningConfig:
    """Thresholds of the cleaning step (all editable in the run config).

    ``min_chars``/``max_chars`` bound the extracted, normalized text; ``max_raw_chars`` only
    guards memory and time against absurd inputs (raw HTML is many times its text).
    """

    min_chars: int = 200
    max_chars: int = 100_000
    max_raw_chars: int = MAX_RAW_CHARS
    min_alpha_ratio: float = 0.6
    max_binary_ratio: float = 0.01
    min_mean_word_len: float = 3.0
    max_mean_word_len: float = 12.0
    max_duplicate_line_ratio: float = 0.3
    languages: tuple[str, ...] = field(default=("en",))
    min_language_probability: float = 0.7


class CleanedBatch(NamedTuple):
    """Kept documents and rejected records of a batch, as Arrow tables.

    ``kept``: doc_id, source, record_no, url, text, n_chars, content_hash, language.
    ``rejected``: source, record_no, url, reason, raw_preview, location.
    Every input record is in exactly one of them.
    """

    kept: pa.Table
    rejected: pa.Table


KEPT_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source", pa.string()), ("record_no", pa.int64()),
    ("url", pa.string()), ("text", pa.string()), ("n_chars", pa.int32()),
    ("content_hash", pa.string()), ("language", pa.string()),
])
REJECTED_SCHEMA = pa.schema([
    ("source", pa.string()), ("record_no", pa.int64()), ("url", pa.string()),
    ("reason", pa.string()), ("raw_preview", pa.string()), ("location", pa.string()),
])


def normalize_whitespace(text: str) -> str:
    """NFC text without control characters, with runs of spaces and blank lines collapsed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_main_text(html: str) -> str | None:
    """The main text of an HTML page without navigation, footers and other boilerplate."""
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=False)


def content_hash(text: str) -> str:
    """Hash of a document's normalized text: equal for exact duplicates."""
    return stable_hash("content", normalize_text(text))


def clean_document(
    raw: object, config: CleaningConfig, is_html: bool = False
) -> tuple[str | None, str | None, str | None]:
    """``(clean_text, None, language)`` for a kept document, ``(None, reason, language)``
    for a rejected one (``language`` is None when the document never got that far)."""
    record = SourceRecord("document", 0, None, raw, is_html=is_html)
    batch = clean_batch([record], config, drop_exact_duplicates=False)
    if batch.kept.num_rows:
        row = batch.kept.to_pylist()[0]
        return row["text"], None, row["language"]
    row = batch.rejected.to_pylist()[0]
    language = row["reason"].split(":", 1)[1] if row["reason"].startswith("language:") else None
    return None, row["reason"], language


def _clean_texts(raws: list[str], html: list[bool], config: CleaningConfig
                 ) -> tuple[list[str | None], list[int | None], list[str | None], list[str]]:
    """Steps 1 to 4 over a list of raw texts: ``(texts, n_chars, reasons, languages)``.

    Module-level and over plain lists, so a process pool can run it on slices of a batch.
    """
    reasons = _binary_reasons(raws, config)
    texts = _extracted_texts(raws, html, reasons, config)
    final, n_chars, late = _normalized_and_judged(texts, config)
    reasons = [r or lr for r, lr in zip(reasons, late, strict=True)]
    languages = _languages(final, reasons, config)
    return final, n_chars, reasons, languages


def _binary_reasons(raws: list[str], config: CleaningConfig) -> list[str | None]:
    """Step 1: ``binary_content`` for each raw input with too many binary characters."""
    import polars as pl

    frame = pl.DataFrame({"raw": raws}, schema={"raw": pl.String})
    binary = frame.select(
        pl.col("raw").str.count_matches(_PL_BINARY)
         > config.max_binary_ratio * pl.col("raw").str.len_chars()).to_series().to_list()
    return ["binary_content" if b else None for b in binary]


def _extracted_texts(raws: list[str], html: list[bool], reasons: list[str | None],
                     config: CleaningConfig) -> list[str | None]:
    """Step 2: HTML main text (per page), and ftfy where it can change something (per text).

    A page without main text gets ``no_main_text`` in ``reasons``; every rejected input's
    text is None.
    """
    import polars as pl

    texts: list[str | None] = list(raws)
    for i, is_html in enumerate(html):
        if is_html and reasons[i] is None:
            extracted = html_main_text(raws[i])
            if not extracted or len(extracted.strip()) < config.min_chars:
                reasons[i] = "no_main_text"
            texts[i] = extracted
    texts = [t if r is None else None for t, r in zip(texts, reasons, strict=True)]
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    may_need = frame.select(pl.col("text").str.contains(_PL_MAY_NEED_FTFY)).to_series()
    if may_need.any():
        import ftfy

        for i in may_need.arg_true().to_list():
            texts[i] = ftfy.fix_text(texts[i])
    return texts


def _normalized_and_judged(texts: list[str | None], config: CleaningConfig
                           ) -> tuple[list[str | None], list[int | None], list[str | None]]:
    """Step 3: whitespace, lengths and web-quality heuristics, as expressions over the batch:
    ``(texts, n_chars, reasons)``."""
    import polars as pl

    text = pl.col("text")
    cleaned = pl.DataFrame({"text": texts}, schema={"text": pl.String}).select(
        text.str.replace_all("\r\n", "\n", literal=True).str.replace_all("\r", "\n",
                                                                         literal=True)
        .str.replace_all(_PL_CONTROL, " ").str.replace_all(r"[ \t\u00a0]+", " ")
        .str.replace_all(_PL_LINE_EDGES, "").str.replace_all(r"\n{3,}", "\n\n")
        .str.strip_chars().alias("text"))
    quality = cleaned.with_columns(
        n_chars=text.str.len_chars(),
        letters=text.str.count_matches(_PL_LETTER),
        non_space=text.str.count_matches(r"\S"),
        spaced_letters=text.str.count_matches(_PL_SPACED_LETTER),
        spaced_words=text.str.count_matches(_PL_SPACED_LETTER + "+"),
        lines=text.str.split("\n").list.eval(pl.element().filter(pl.element() != "")),
    ).with_columns(
        n_lines=pl.col("lines").list.len(),
        unique_lines=pl.col("lines").list.n_unique(),
        mean_word=pl.col("spaced_letters") / pl.col("spaced_words"),
    ).select(
        "text", "n_chars",
        pl.when(text.is_null()).then(None)
        .when(pl.col("n_chars") == 0).then(pl.lit("empty"))
        .when(pl.col("n_chars") < config.min_chars).then(pl.lit("too_short"))
        .when(pl.col("n_chars") > config.max_chars).then(pl.lit("too_long"))
        .when((pl.col("non_space") > 0)
              & (pl.col("letters") < config.min_alpha_ratio * pl.col("non_space")))
        .then(pl.lit("low_alpha_ratio"))
        # word length says little where words are not spaced (Chinese, Japanese, Thai)
        .when((pl.col("spaced_words") > 0)
              & (2 * pl.col("spaced_letters") >= pl.col("letters"))
              & ((pl.col("mean_word") < config.min_mean_word_len)
                 | (pl.col("mean_word") > config.max_mean_word_len)))
        .then(pl.lit("odd_word_length"))
        .when((pl.col("n_lines") >= 4)
              & (pl.col("n_lines") - pl.col("unique_lines")
                 > config.max_duplicate_line_ratio * pl.col("n_lines")))
        .then(pl.lit("repeated_lines"))
        .otherwise(None).alias("reason"),
    )
    return (quality.get_column("text").to_list(), quality.get_column("n_chars").to_list(),
            quality.get_column("reason").to_list())


def _languages(final: list[str | None], reasons: list[str | None], config: CleaningConfig
               ) -> list[str]:
    """Step 4: the language of each text still kept; one outside ``config.languages``, or
    too uncertain, gets ``language:<code>`` in ``reasons``."""
    languages = [""] * len(final)
    for i, reason in enumerate(reasons):
        if reason is None:
            language, probability = detect_language(final[i])
            languages[i] = language
            if config.languages and (language not in config.languages
                                     or probability < config.min_language_probability):
                reasons[i] = f"language:{language}"
    return languages


_POOLS: dict[int, object] = {}


def _one_thread_worker() -> None:
    """Each worker is one of the cores: polars' own thread pool (one thread per core, made
    when polars is first imported, which happens after this) would only contend with the
    other workers."""
    # Allowed exception to settings.py owning os.environ: must be set before polars is imported.
    os.environ["POLARS_MAX_THREADS"] = "1"


def _pool(workers: int):
    """A process pool of ``workers``, started once per process and reused by every batch:
    each spawned worker imports polars and loads the language model once, not per batch."""
    if workers not in _POOLS:
        import atexit
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: polars and fastText hold threads that a fork would copy half-alive
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_one_thread_worker)
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
        _POOLS[workers] = pool
    return _POOLS[workers]


def _clean_in_parallel(raws: list[str], html: list[bool], config: CleaningConfig,
                       workers: int):
    """``_clean_texts`` over the batch, in ``workers`` processes when the batch is large."""
    if workers <= 1 or len(raws) < _MIN_PARALLEL:
        return _clean_texts(raws, html, config)
    from concurrent.futures.process import BrokenProcessPool

    # Several slices a worker, so one slow slice (long pages, many languages) does not
    # leave the other worker idle at the end.
    size = max(1024, -(-len(raws) // (4 * workers)))
    bounds = [(k, min(k + size, len(raws))) for k in range(0, len(raws), size)]
    slices = ([raws[a:b] for a, b in bounds], [html[a:b] for a, b in bounds],
              [config] * len(bounds))
    try:
        parts = list(_pool(workers).map(_clean_texts, *slices))
    except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh once
        _POOLS.pop(workers, None)
        parts = list(_pool(workers).map(_clean_texts, *slices))
    return tuple([x for part in parts for x in part[k]] for k in range(4))


def clean_batch(
    records: Iterable[SourceRecord | SourceRejection],
    config: CleaningConfig,
    *,
    drop_exact_duplicates: bool = True,
    batch: str | None = None,
    workers: int = 1,
) -> CleanedBatch:
    """Clean a whole batch of read records into kept documents and rejections.

    Args:
        records: What a reader yielded (``read_records``): records and read rejections.
        config: Thresholds.
        drop_exact_duplicates: Reject a document whose normalized text equals an earlier
            one of the batch, as ``exact_duplicate_of:<doc_id>``.
        batch: The batch key, when the tables are for one: both get a ``batch`` column and
            duplicates read ``exact_duplicate_of:<batch>/<doc_id>``.
        workers: Processes for the per-document steps (HTML extraction, ftfy, language)
            of a batch of at least 4,096 documents; 1 runs them in this process.

    Returns:
        A :class:`CleanedBatch`; ``kept`` in input order.
    """
    rejected, (sources, numbers, urls, raws, html) = _screened(records, config)
    final, n_chars, reasons, languages = _clean_in_parallel(raws, html, config, workers)

    # 5. exact duplicates inside the batch
    kept: dict[str, list] = {name: [] for name in KEPT_SCHEMA.names}
    first_of: dict[str, str] = {}
    prefix = f"exact_duplicate_of:{batch}/" if batch else "exact_duplicate_of:"
    for i, reason in enumerate(reasons):
        if reason is None:
            digest = content_hash(final[i])
            did = doc_id(sources[i], final[i])
            if drop_exact_duplicates and digest in first_of:
                reason = prefix + first_of[digest]
            else:
                first_of.setdefault(digest, did)
                for name, value in (("doc_id", did), ("source", sources[i]),
                                    ("record_no", numbers[i]), ("url", urls[i]),
                                    ("text", final[i]), ("n_chars", n_chars[i]),
                                    ("content_hash", digest), ("language", languages[i])):
                    kept[name].append(value)
                continue
        rejected.append({"source": sources[i], "record_no": numbers[i], "url": urls[i],
                         "reason": reason, "raw_preview": (final[i] or raws[i])[:PREVIEW_CHARS]
                         if reason.startswith(("language:", "exact_duplicate_of:"))
                         else raws[i][:PREVIEW_CHARS], "location": None})
    return _tables(kept, rejected, batch)


def _screened(records: Iterable[SourceRecord | SourceRejection], config: CleaningConfig
              ) -> tuple[list[dict], tuple[list[str], list[int], list[str | None], list[str],
                                           list[bool]]]:
    """The type check and raw-size guard: ``(rejected rows, (sources, record numbers, urls,
    raw texts, is_html))``, the rows for the read rejections and the records that fail."""
    rejected: list[dict] = []
    sources: list[str] = []
    numbers: list[int] = []
    urls: list[str | None] = []
    raws: list[str] = []
    html: list[bool] = []
    for rec in records:
        if isinstance(rec, SourceRejection):
            rejected.append({"source": rec.source, "record_no": rec.record_no, "url": None,
                             "reason": rec.reason, "raw_preview": rec.raw_preview,
                             "location": rec.location})
            continue
        reason = None
        if not isinstance(rec.text, str):
            reason = "text_not_a_string"
        elif len(rec.text) > config.max_raw_chars:
            reason = "raw_too_large"
        if reason:
            rejected.append({"source": rec.source, "record_no": rec.record_no, "url": rec.url,
                             "reason": reason, "raw_preview": str(rec.text)[:PREVIEW_CHARS],
                             "location": None})
            continue
        sources.append(rec.source)
        numbers.append(rec.record_no)
        urls.append(rec.url)
        raws.append(rec.text)
        html.append(rec.is_html)
    return rejected, (sources, numbers, urls, raws, html)


def _tables(kept: dict[str, list], rejected: list[dict], batch: str | None) -> CleanedBatch:
    """The Arrow tables of a cleaned batch, each with a ``batch`` column when it has a key."""
    kept_table = pa.table(kept, schema=KEPT_SCHEMA)
    rejected_table = pa.Table.from_pylist(rejected, schema=REJECTED_SCHEMA)
    if batch is not None:
        kept_table = kept_table.append_column(
            "batch", pa.array([batch] * kept_table.num_rows, pa.string()))
        rejected_table = rejected_table.append_column(
            "batch", pa.array([batch] * rejected_table.num_rows, pa.string()))
    return CleanedBatch(kept_table, rejected_table)
