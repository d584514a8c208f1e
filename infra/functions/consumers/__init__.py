"""One module per consumer of the topology; each defines ``process`` and ``handler``.

``process(event, ctx)`` is the business code, run at most once per event ID by
``infra.functions.consumer``; ``handler`` is the Lambda entry point named in
``infra.topology`` (``infra.functions.consumers.<name>.handler``).
"""
