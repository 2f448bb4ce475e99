"""`few_shot`: tool calling, with example conversations in the system prompt (tau-bench v1's
few-shot agent). Examples come from a JSONL file with one `messages_display` text per line
(`agent.few_shot.path`; build one with `python -m tau_exp.fewshot build`); each conversation
shows `agent.few_shot.num` of them, sampled with its (task, trial) seed."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

from tau2.environment.tool import Tool

from tau_exp.agents.tool_calling import ToolCallingAgent
from tau_exp.config import AgentConfig, FewShotConfig
from tau_exp.errors import ConfigError
from tau_exp.llm import ChatModel


@functools.lru_cache(maxsize=8)
def load_examples(path: str) -> tuple[str, ...]:
    """The `messages_display` of every line; ConfigError names the file and line otherwise."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"agent.few_shot.path={path} does not exist: build one with "
                          "`python -m tau_exp.fewshot build RUN_DIR -o FILE`")
    examples = []
    with open(file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}:{number}: not JSON ({error.msg})") from None
            display = record.get("messages_display") if isinstance(record, dict) else None
            if not isinstance(display, str) or not display.strip():
                raise ConfigError(f'{path}:{number}: no "messages_display" text (each line needs one)')
            examples.append(display.strip())
    if not examples:
        raise ConfigError(f"agent.few_shot.path={path} holds no examples")
    return tuple(examples)


def check_examples(settings: FewShotConfig) -> None:
    """The checks `agent=few_shot` needs before anything starts."""
    if not settings.path:
        raise ConfigError("agent=few_shot needs a file of examples: agent.few_shot.path=FILE "
                          "(build one with `python -m tau_exp.fewshot build RUN_DIR -o FILE`)")
    if settings.num < 1:
        raise ConfigError(f"agent.few_shot.num={settings.num} must be at least 1")
    available = len(load_examples(settings.path))
    if settings.num > available:
        raise ConfigError(f"agent.few_shot.num={settings.num} is more than the {available} examples "
                          f"in {settings.path}")


class FewShotAgent(ToolCallingAgent):
    def __init__(self, tools: list[Tool], domain_policy: str, model: ChatModel, settings: AgentConfig | None = None) -> None:
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
