"""Personas: validation of personas and samples, attributes, PII redaction and audits."""
