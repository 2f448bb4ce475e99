"""Running one job: the schedule and its concurrency (`runloop`), the worker processes that run
the episodes (`workers`), the in-flight limit per model server (`concurrency`), the append-only
result store (`checkpoint`), the job's recorded outcome (`outcome`, status.json) and its
GPU-hours (`cost`). `tau_exp.experiment` puts them together."""
