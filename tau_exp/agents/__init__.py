"""Assistant strategies: the agent under test. Each module holds one strategy, named as its
config (`conf/agent/<name>.yaml` ↔ `tau_exp/agents/<name>.py`).

Every agent is a tau2 agent (so tau2's Orchestrator drives it), built as
`Agent(tools, domain_policy, model, settings)` from the environment's tools and policy, a
`ChatModel` and its `AgentConfig`; agents never call litellm themselves."""

from __future__ import annotations

from hydra.utils import get_class

from tau_exp.config import AgentConfig
from tau_exp.errors import ConfigError

# name → its class, imported only when used (tau2 and litellm are slow to import).
AGENTS: dict[str, str] = {
    "tool_calling": "tau_exp.agents.tool_calling.ToolCallingAgent",
    "react": "tau_exp.agents.react.ReActAgent",
    "act": "tau_exp.agents.act.ActAgent",
    "few_shot": "tau_exp.agents.few_shot.FewShotAgent",
}


def agent_class(name: str) -> type:
    return get_class(AGENTS[name])


def validate(agent: AgentConfig) -> None:
    """The strategy exists, and has what it needs (few_shot: a usable examples file)."""
    if agent.name not in AGENTS:
        raise ConfigError(f"agent.name={agent.name!r} is unknown; choose one of {', '.join(sorted(AGENTS))}")
    if agent.name == "few_shot":
        from tau_exp.agents.examples import check_examples

        check_examples(agent.few_shot)
