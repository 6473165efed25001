"""Automation: when each asset is refreshed (conditions), the two sensors and the named jobs."""
