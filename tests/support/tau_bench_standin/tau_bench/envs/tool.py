"""Tool interface of tau-bench v1 (mirrors upstream tau_bench/envs/tool.py)."""

import abc
from typing import Any, Dict, List


class Tool(abc.ABC):
    """A tool is a class with two static methods; the environment never instantiates it."""

    @staticmethod
    def invoke(*args, **kwargs):
        """Run the tool on the environment's data: `invoke(data, **arguments) -> str`."""
        raise NotImplementedError

    @staticmethod
    def get_info() -> dict[str, Any]:
        """The OpenAI function schema: {"type": "function", "function": {"name", ...}}."""
        raise NotImplementedError


def _function_info(
    name: str, description: str, properties: Dict[str, Any], required: List[str]
) -> Dict[str, Any]:
    """Helper of this test double (not in v1): build an OpenAI function schema."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }
