"""personahub-assets: persona-driven synthetic data as a Dagster code location."""

__version__ = "0.1.0"
