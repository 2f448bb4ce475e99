"""Running one job: the schedule and its concurrency (`runloop`), the worker processes that run
the episodes (`workers`), the append-only result store (`checkpoint`), the job's recorded
outcome (`outcome`, status.json) and its GPU-hours (`cost`). The in-flight limit per model
server is the model client's (`tau_exp.llm.concurrency`). `tau_exp.experiment` puts them
together."""
