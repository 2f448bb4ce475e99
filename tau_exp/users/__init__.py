"""User-simulator strategies (`user_strategy=`, which sets `user.strategy`), each built on tau2's
user simulator (its guidelines, the task's scenario, role flipping) as
`User(tools, instructions, model, settings)`, calling its model through `ChatModel`. Each module
holds one strategy, named as its config (`conf/user_strategy/<name>.yaml` ↔
`tau_exp/users/<name>.py`), registered in `USER_STRATEGIES` (`tau_exp/strategies.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from tau_exp.config import UserConfig
from tau_exp.errors import ConfigError
from tau_exp.strategies import Strategies

USER_STRATEGIES = Strategies(
    "tau_exp.users",
    "user.strategy",
    {"llm": "LLMUser", "react": "ReActUser", "verify": "VerifyUser", "reflection": "ReflectionUser"},
)


@dataclass(frozen=True)
class UserSettings:
    """What an episode's user simulator is built with (a plain value, like `AgentSettings`)."""

    strategy: str
    verify_attempts: int  # verify, reflection: replies generated before the last one is kept

    @classmethod
    def of(cls, user: UserConfig) -> UserSettings:
        return cls(user.strategy, user.verify_attempts)


def validate(user: UserConfig) -> None:
    """The user strategy exists, and its settings are usable."""
    USER_STRATEGIES.check(user.strategy)
    if user.verify_attempts < 1:
        raise ConfigError(f"user.verify_attempts={user.verify_attempts} must be at least 1")
