"""The oracle model server: an OpenAI-compatible HTTP server that plays a perfect assistant and a
perfect user for any tau2 task, with optional latency and injected faults.

- `script.py` decides what the oracle says (from the task's gold actions); no HTTP.
- `server.py` serves it over the OpenAI chat-completions API and injects faults.

It is started like any model server, by the `oracle` server kind (`tau_exp/servers/oracle.py`,
which also says how its key and settings reach it).
"""
