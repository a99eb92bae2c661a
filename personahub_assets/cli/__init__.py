"""The commands `make` runs: demo, update, report and retract (``python -m
personahub_assets.cli.<name>``, or the short ``python -m personahub_assets.<name>``), and
distill (``python -m personahub_assets.cli.distill``: the static encoder, once at install)."""
