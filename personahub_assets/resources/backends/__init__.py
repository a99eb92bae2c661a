"""Inference backends behind the one LLM resource."""
