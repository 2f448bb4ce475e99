"""User-simulator strategies (`user.strategy`), each built on tau2's user simulator and calling
its model through `ChatModel`."""

from __future__ import annotations

import importlib

USER_STRATEGIES: dict[str, str] = {
    "llm": "tau_exp.users.llm:LLMUser",
}


def user_class(strategy: str) -> type:
    module, _, cls = USER_STRATEGIES[strategy].partition(":")
    return getattr(importlib.import_module(module), cls)
