"""`act`: like `react`, without the thought — the model answers with one JSON action per turn
(tau-bench v1's Act strategy)."""

from __future__ import annotations

from tau_exp.agents.react import ReActAgent


class ActAgent(ReActAgent):
    with_thought = False
