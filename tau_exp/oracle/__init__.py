"""The oracle model server: an OpenAI-compatible HTTP server that plays a perfect assistant and a
perfect user for any tau2 task, with optional latency and injected faults.

- `script.py` decides what the oracle says (from the task's gold actions); no HTTP.
- `server.py` serves it over the OpenAI chat-completions API and injects faults.
"""

# The server's API key arrives in this environment variable (never on the command line).
API_KEY_ENV = "TAU_EXP_ORACLE_API_KEY"
