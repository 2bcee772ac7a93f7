"""The training worker: training runs taken from a job queue in PostgreSQL (procrastinate), so bot processes
stay responsive and one run per scope happens at a time across the deployment.

``queue.py`` is the queue (schema, the task, deferring, its length); ``queued.py`` is the training service
bot processes use when ``training_runner = queue`` (queue a run, follow it through the run ledger);
``main.py`` is ``teachbot worker``.
"""
