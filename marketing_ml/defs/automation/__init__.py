"""Automation: the jobs, their schedules and the raw-folder sensor."""
