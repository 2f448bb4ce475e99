"""Reasoning that models write into their replies, and how to take it out."""

from __future__ import annotations

import re

_THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_STRAY_THINK_END = re.compile(r"^.*?</think>", re.DOTALL | re.IGNORECASE)  # opening tag in the prompt template


def strip_reasoning(text: str | None) -> str:
    """The text without Qwen3-style thinking (`<think>…</think>`, or a lone `</think>` whose
    opening tag was part of the chat template)."""
    if not text:
        return ""
    text = _THINK_BLOCK.sub("", text)
    return _STRAY_THINK_END.sub("", text).strip()
