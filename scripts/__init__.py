"""The project's command-line tools. A regular package, so `python -m scripts.bench` run from the
repository root finds this folder before any other top-level `scripts` on the path."""
