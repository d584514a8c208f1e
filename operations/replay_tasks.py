"""Celery tasks for archive replays and re-publishing events."""
