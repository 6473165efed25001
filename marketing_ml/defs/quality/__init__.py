"""Data quality: one asset check per declared rule, row accounting and the quality report."""
