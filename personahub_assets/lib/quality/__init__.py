"""Quality: the judge, the safety screen, diversity and quality filters."""
