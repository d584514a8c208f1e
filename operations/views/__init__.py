"""Views of DLQ operations: DLQ messages, redrive, operations list and detail, actions."""
