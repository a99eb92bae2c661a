"""Ingestion: sources and readers (JSONL, Parquet, CSV, WARC/WET, HTML, Hugging Face), batching,
cleaning, language ID, per-file accounting."""
