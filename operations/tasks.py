"""Celery tasks for operator actions (redrive). Each claims its Operation row first."""
