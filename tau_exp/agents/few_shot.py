"""`few_shot`: tool calling, with example conversations in the system prompt (tau-bench v1's
few-shot agent). Examples come from a JSONL file with one `messages_display` text per line
(`agent.few_shot.path`; build one with `python -m tau_exp.examples build`); each conversation
shows `agent.few_shot.num` of them, sampled with its (task, trial) seed."""

from __future__ import annotations

import random

from tau2.environment.tool import Tool

from tau_exp.agents.examples import load_examples
from tau_exp.agents.tool_calling import ToolCallingAgent
from tau_exp.config import AgentConfig
from tau_exp.errors import ConfigError
from tau_exp.llm.chat import ChatModel


class FewShotAgent(ToolCallingAgent):
    def __init__(
        self, tools: list[Tool], domain_policy: str, model: ChatModel, settings: AgentConfig | None = None
    ) -> None:
        super().__init__(tools, domain_policy, model, settings)
        if settings is None or not settings.few_shot.path:
            raise ConfigError("agent=few_shot needs agent.few_shot.path")
        self.examples = load_examples(settings.few_shot.path)
        self.num_examples = settings.few_shot.num

    @property
    def system_prompt(self) -> str:
        # Called by get_init_state, after the orchestrator has set the seed.
        chosen = random.Random(self.model.seed).sample(self.examples, self.num_examples)
        shown = "\n\n".join(f"<example {i}>\n{text}\n</example {i}>" for i, text in enumerate(chosen, start=1))
        return f"{super().system_prompt}\n<examples>\nConversations handled well in the past:\n\n{shown}\n</examples>"
