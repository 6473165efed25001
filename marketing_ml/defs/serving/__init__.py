"""Serving: the atomic publish of the serving file and the offline HTML report."""
