"""Fixtures shared by the operations tests (the stubbed clients are in tests/conftest.py)."""
