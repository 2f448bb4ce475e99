"""Assistant strategies: the agent under test. Each module holds one strategy, named as its
config (`conf/agent/<name>.yaml` ↔ `tau_exp/agents/<name>.py`), registered in `AGENTS`
(`tau_exp/strategies.py`: the one mechanism of both parties' strategies).

Every agent is a tau2 agent (so tau2's Orchestrator drives it), built as
`Agent(tools, domain_policy, model, settings)` from the environment's tools and policy, a
`ChatModel` and its `AgentSettings`; agents never call litellm themselves."""

from __future__ import annotations

from dataclasses import dataclass

from tau_exp.config import AgentConfig
from tau_exp.strategies import Strategies

AGENTS = Strategies(
    "tau_exp.agents",
    "agent.name",
    {"tool_calling": "ToolCallingAgent", "react": "ReActAgent", "act": "ActAgent", "few_shot": "FewShotAgent"},
)


@dataclass(frozen=True)
class AgentSettings:
    """What an episode's agent is built with: its strategy and the few-shot examples it shows
    (a plain value: it goes to the worker processes with each episode)."""

    name: str
    few_shot_path: str | None = None  # agent=few_shot: the JSONL file of examples
    few_shot_num: int = 0  # ... and how many each conversation shows

    @classmethod
    def of(cls, agent: AgentConfig) -> AgentSettings:
        return cls(agent.name, agent.few_shot.path, agent.few_shot.num)


def validate(agent: AgentConfig) -> None:
    """The strategy exists, and has what it needs (few_shot: a usable examples file)."""
    AGENTS.check(agent.name)
    if agent.name == "few_shot":
        from tau_exp.agents.examples import check_examples

        check_examples(agent.few_shot)
