"""Triage: why DLQ messages failed (``errors``), grouped by signature (``signature``)."""
