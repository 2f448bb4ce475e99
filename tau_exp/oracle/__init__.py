"""The oracle model server: an OpenAI-compatible HTTP server that plays a perfect assistant and a
perfect user for any tau2 task, with optional latency and injected faults.

- `script.py` decides what the oracle says (from the task's gold actions); no HTTP.
- `server.py` serves it over the OpenAI chat-completions API and injects faults.

This module is the server's command-line contract with the `oracle` server kind that starts it
(`tau_exp/servers/oracle.py`): where the key comes from, and how its settings travel.
"""

from __future__ import annotations

import dataclasses
import json

from tau_exp.config import OracleConfig

# The server's API key arrives in this environment variable (never on the command line).
API_KEY_ENV = "TAU_EXP_ORACLE_API_KEY"


def settings_to_json(settings: OracleConfig) -> str:
    """`server.oracle` of a model's config (latency, faults) as the server's `--settings`."""
    return json.dumps(dataclasses.asdict(settings))


def settings_from_json(text: str) -> OracleConfig:
    """`--settings` read back through the config schema (unknown keys and wrong types refused)."""
    from omegaconf import OmegaConf

    merged = OmegaConf.merge(OmegaConf.structured(OracleConfig), json.loads(text))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]
