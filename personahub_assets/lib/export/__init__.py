"""Export: release files, dataset cards and plots."""
