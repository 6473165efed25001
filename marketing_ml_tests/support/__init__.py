"""What test modules share (builders, servers, constants); fixtures stay in the conftest.py files.

No test module imports another test module: anything two of them need lives here."""

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
"""The checkout's root (tests live one tier folder below marketing_ml_tests/)."""
