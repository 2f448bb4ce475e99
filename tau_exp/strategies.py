"""The one mechanism behind both parties' strategies: the assistant's (`agent=`, tau_exp/agents/)
and the user simulator's (`user_strategy=`, tau_exp/users/).

A strategy is named as its config option and its module (`conf/agent/react.yaml` ↔
`tau_exp/agents/react.py`); its class is imported only when an episode needs it (tau2 and
litellm take seconds to import), and a name is checked before anything starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hydra.utils import get_class

from tau_exp.errors import ConfigError


@dataclass(frozen=True)
class Strategies:
    """One party's strategies: each name → the class in the module of that name."""

    package: str  # e.g. tau_exp.agents
    key: str  # the config key that chooses one, e.g. agent.name
    classes: Mapping[str, str]  # name → class name in `<package>.<name>`

    def names(self) -> list[str]:
        return sorted(self.classes)

    def check(self, name: str) -> None:
        """ConfigError naming the valid choices, unless `name` is one of them."""
        if name not in self.classes:
            raise ConfigError(f"{self.key}={name!r} is unknown; choose one of {', '.join(self.names())}")

    def load(self, name: str) -> type:
        """The strategy's class (its module imported now)."""
        self.check(name)
        return get_class(f"{self.package}.{name}.{self.classes[name]}")
