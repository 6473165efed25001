"""Gold: the daily ad-set fact table the dashboard, models and plan read."""
