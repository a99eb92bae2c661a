"""The commands `make` runs: demo, update, report and retract (``python -m
personahub_assets.cli.<name>``, or the short ``python -m personahub_assets.<name>``)."""
