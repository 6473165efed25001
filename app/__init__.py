"""The Streamlit dashboard and the HTML report: they read the serving file that `publish` writes."""
