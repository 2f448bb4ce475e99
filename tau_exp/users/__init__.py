"""User-simulator strategies (`user.strategy`), each built on tau2's user simulator (its
guidelines, the task's scenario, role flipping) as `User(tools, instructions, model, settings)`,
calling its model through `ChatModel`."""

from __future__ import annotations

from hydra.utils import get_class

from tau_exp.config import UserConfig
from tau_exp.errors import ConfigError

USER_STRATEGIES: dict[str, str] = {
    "llm": "tau_exp.users.llm.LLMUser",
    "react": "tau_exp.users.react.ReActUser",
    "verify": "tau_exp.users.verify.VerifyUser",
    "reflection": "tau_exp.users.reflection.ReflectionUser",
}


def user_class(strategy: str) -> type:
    return get_class(USER_STRATEGIES[strategy])


def validate(user: UserConfig) -> None:
    """The user strategy exists."""
    if user.strategy not in USER_STRATEGIES:
        raise ConfigError(
            f"user.strategy={user.strategy!r} is unknown; choose one of {', '.join(sorted(USER_STRATEGIES))}"
        )
