"""Bronze: every raw row as text, with lineage."""
