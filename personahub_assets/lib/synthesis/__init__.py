"""Synthesis: generation requests and results, constraints, persona targeting, math answers."""
