"""Simulated users of tau-bench v1 (mirrors upstream tau_bench/envs/user.py).

Every model call goes through the module-level name `completion` (imported from litellm, as in
v1) with exactly v1's keyword arguments: `completion(model=..., custom_llm_provider=...,
messages=...)` -- no temperature, no tools. Costs are read from
`res._hidden_params["response_cost"]`; as in v1, `total_cost` holds the cost of the LAST call
(it is assigned, not summed). The LLM-based users call the model once when constructed.
"""

import abc
import enum
from typing import Any, Dict, List, Optional, Union

from litellm import completion

OPENING_LINE = "Hi! How can I help you today?"


class BaseUserSimulationEnv(abc.ABC):
    metadata = {}

    @abc.abstractmethod
    def reset(self, instruction: Optional[str] = None) -> str:
        raise NotImplementedError

    @abc.abstractmethod
    def step(self, content: str) -> str:
        raise NotImplementedError

    @abc.abstractmethod
    def get_total_cost(self) -> float:
        raise NotImplementedError


class HumanUserSimulationEnv(BaseUserSimulationEnv):
    """A person at the terminal plays the user."""

    def reset(self, instruction: str) -> str:
        return input(f"{instruction}\n")

    def step(self, content: str) -> str:
        return input(f"{content}\n")

    def get_total_cost(self) -> float:
        return 0


class LLMUserSimulationEnv(BaseUserSimulationEnv):
    """A language model plays the user, one line per turn ("llm" strategy)."""

    def __init__(self, model: str, provider: str) -> None:
        super().__init__()
        self.messages: List[Dict[str, Any]] = []
        self.model = model
        self.provider = provider
        self.total_cost = 0.0
        self.reset()

    def generate_next_message(self, messages: List[Dict[str, Any]]) -> str:
        res = completion(model=self.model, custom_llm_provider=self.provider, messages=messages)
        message = res.choices[0].message
        self.messages.append(message.model_dump())
        self.total_cost = res._hidden_params["response_cost"]
        return message.content

    def build_system_prompt(self, instruction: Optional[str]) -> str:
        shown = f"\n\nInstruction: {instruction}\n" if instruction is not None else ""
        return (
            f"You are a customer talking to a customer-service agent.{shown}\n"
            "Rules:\n"
            "- Write one short line per turn, as the customer.\n"
            "- Reveal only what the current step needs; never invent facts the instruction lacks.\n"
            "- When your goal is met, reply with '###STOP###' alone."
        )

    def reset(self, instruction: Optional[str] = None) -> str:
        self.messages = [
            {"role": "system", "content": self.build_system_prompt(instruction=instruction)},
            {"role": "user", "content": OPENING_LINE},
        ]
        return self.generate_next_message(self.messages)

    def step(self, content: str) -> str:
        self.messages.append({"role": "user", "content": content})
        return self.generate_next_message(self.messages)

    def get_total_cost(self) -> float:
        return self.total_cost


class ReactUserSimulationEnv(LLMUserSimulationEnv):
    """The user model writes "Thought: ... User Response: ..." ("react" strategy).
    As in v1 the constructor resets twice (two model calls)."""

    def __init__(self, model: str, provider: str) -> None:
        super().__init__(model=model, provider=provider)
        self.reset()

    def build_system_prompt(self, instruction: Optional[str]) -> str:
        return (
            super().build_system_prompt(instruction)
            + "\n\nFormat:\n\nThought:\n<your private thought>\n\nUser Response:\n<the line sent to the agent>"
        )

    def generate_next_message(self, messages: List[Dict[str, Any]]) -> str:
        res = completion(model=self.model, custom_llm_provider=self.provider, messages=messages)
        message = res.choices[0].message
        self.messages.append(message.model_dump())
        self.total_cost = res._hidden_params["response_cost"]
        return self.parse_response(message.content)

    def parse_response(self, response: str) -> str:
        """v1's parsing, including its quirk: with a "Thought:" marker the text AFTER it
        (thought and response together) is returned."""
        if "###STOP###" in response:
            return "###STOP###"
        for marker in ("Thought:", "User Response:"):
            if marker in response:
                before, after = response.split(marker)
                return after.strip()
        raise ValueError(f"Invalid response format: {response}")


class VerifyUserSimulationEnv(LLMUserSimulationEnv):
    """Each user line is checked by a second model call (`verify`), retried up to
    `max_attempts` times ("verify" strategy)."""

    def __init__(self, model: str, provider: str, max_attempts: int = 3) -> None:
        self.model = model
        self.provider = provider
        self.max_attempts = max_attempts
        self.reset()

    def generate_next_message(self, messages: List[Dict[str, Any]]) -> str:
        candidate = None
        for _ in range(self.max_attempts):
            res = completion(model=self.model, custom_llm_provider=self.provider, messages=messages)
            candidate = res.choices[0].message
            self.total_cost = res._hidden_params["response_cost"]
            if verify(self.model, self.provider, candidate, messages):
                self.messages.append(candidate.model_dump())
                return candidate.content
        assert candidate is not None
        return candidate.content


def map_role_label(role: str) -> str:
    return {"user": "Customer", "assistant": "Agent"}.get(role, role.capitalize())


def _transcript(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(f"{map_role_label(m['role'])}: {m['content']}" for m in messages)


def verify(model: str, provider: str, response: str, messages: List[Dict[str, Any]]) -> bool:
    """Ask the model whether the simulated customer's response is satisfactory."""
    prompt = (
        "You supervise a simulated Customer talking to an Agent. Is the Customer's Response "
        "satisfactory? Answer only true or false.\n\n"
        f"# Transcript:\n{_transcript(messages)}\n\n# Response:\n{response}\n\nClassification:"
    )
    res = completion(
        model=model, custom_llm_provider=provider, messages=[{"role": "user", "content": prompt}]
    )
    return "true" in res.choices[0].message.content.lower()


def reflect(model: str, provider: str, response: str, messages: List[Dict[str, Any]]) -> str:
    """Ask the model for a reflection and a better response; return the part after "Response:"."""
    prompt = (
        "You supervise a simulated Customer talking to an Agent. The Customer's Response was "
        "judged unsatisfactory. Reflect on what went wrong and propose a new Response.\n\n"
        f"# Transcript:\n{_transcript(messages)}\n\n# Response:\n{response}\n\n"
        "# Format:\n\nReflection:\n<the reflection>\n\nResponse:\n<the new response>"
    )
    res = completion(
        model=model, custom_llm_provider=provider, messages=[{"role": "user", "content": prompt}]
    )
    _, new_response = res.choices[0].message.content.split("Response:")
    return new_response.strip()


class ReflectionUserSimulationEnv(LLMUserSimulationEnv):
    """Like "llm", but an unsatisfactory line (per `verify`) triggers `reflect` and a retry
    ("reflection" strategy)."""

    def __init__(self, model: str, provider: str, max_attempts: int = 2) -> None:
        self.model = model
        self.provider = provider
        self.max_attempts = max_attempts
        self.reset()

    def generate_next_message(self, messages: List[Dict[str, Any]]) -> str:
        cur_messages = messages.copy()
        initial_response = super().generate_next_message(cur_messages)
        if verify(self.model, self.provider, initial_response, cur_messages):
            return initial_response
        for _ in range(1, self.max_attempts):
            hint = reflect(self.model, self.provider, initial_response, cur_messages)
            cur_messages.append({"role": "user", "content": hint})
            new_response = super().generate_next_message(cur_messages)
            if verify(self.model, self.provider, new_response, cur_messages):
                return new_response
        return initial_response


class UserStrategy(enum.Enum):
    HUMAN = "human"
    LLM = "llm"
    REACT = "react"
    VERIFY = "verify"
    REFLECTION = "reflection"


_MODEL_USERS = {
    UserStrategy.LLM: ("LLM", LLMUserSimulationEnv),
    UserStrategy.REACT: ("React", ReactUserSimulationEnv),
    UserStrategy.VERIFY: ("Verify", VerifyUserSimulationEnv),
    UserStrategy.REFLECTION: ("Reflection", ReflectionUserSimulationEnv),
}


def load_user(
    user_strategy: Union[str, UserStrategy],
    model: Optional[str] = "gpt-4o",
    provider: Optional[str] = None,
) -> BaseUserSimulationEnv:
    """Build the user simulator for a strategy ("human", "llm", "react", "verify", "reflection")."""
    if isinstance(user_strategy, str):
        user_strategy = UserStrategy(user_strategy)
    if user_strategy == UserStrategy.HUMAN:
        return HumanUserSimulationEnv()
    if user_strategy in _MODEL_USERS:
        label, user_class = _MODEL_USERS[user_strategy]
        if model is None:
            raise ValueError(f"{label} user strategy requires a model")
        if provider is None:
            raise ValueError(f"{label} user strategy requires a model provider")
        return user_class(model=model, provider=provider)
    raise ValueError(f"Unknown user strategy {user_strategy}")
