"""Plumbing every stage shares: IDs, the table schemas, transactions, retries, fault injection,
OpenAI-compatible calls."""
