"""Silver: typed, cleaned, deduplicated tables, the revenue by day and the quarantine."""
