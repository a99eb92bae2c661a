"""Curation: MinHash, persona embeddings and the vector index, the incremental hub (decisions,
state, retraction, audit)."""
