"""servers/oracle.py: the oracle server's settings travel as `server.oracle` of the model's config (one
declaration: the schema), and come back the same; anything else is refused. A running oracle
takes new latency and faults (`PUT /oracle/settings`), which the tests' shared faulty pair uses."""

from __future__ import annotations

import httpx
import pytest
from omegaconf.errors import ConfigKeyError

from tau_exp.config import FaultConfig, OracleConfig
from tau_exp.servers.oracle import settings_from_json, settings_to_json
from tests.support.oracle_chat import chat


def test_settings_survive_the_command_line():
    settings = OracleConfig(latency_s=0.2, faults=FaultConfig(error_rate=0.1, bad_arguments_rate=0.3, hang_s=2, seed=7))
    assert settings_from_json(settings_to_json(settings)) == settings


def test_an_unknown_setting_is_refused():
    with pytest.raises(ConfigKeyError):
        settings_from_json('{"faults": {"eror_rate": 0.1}}')


def _answers(endpoint, n: int) -> list[int]:
    opening = [{"role": "user", "content": "hi"}]
    return [chat(endpoint, "5", opening).status_code for _ in range(n)]


def test_a_running_oracle_takes_new_faults_and_answers_as_a_fresh_one_would(faulty_servers, oracle_faults):
    """PUT /oracle/settings: the faults change at once, and their draws start again from the seed,
    so the same settings give the same answers in the same order (as a server started with them)."""
    assistant = faulty_servers["assistant"]
    oracle_faults(assistant={"error_rate": 0.5, "seed": 3})
    first = _answers(assistant, 12)
    assert {500, 503} & set(first) and 200 in first  # about half fail
    oracle_faults(assistant={"error_rate": 0.5, "seed": 3})
    assert _answers(assistant, 12) == first
    oracle_faults()  # none: every answer is fine
    assert set(_answers(assistant, 5)) == {200}


@pytest.mark.parametrize(
    "body, key, status",
    [
        ('{"capacity": 2}', True, 409),  # a capacity is the server's for its life
        ('{"faults": {"eror_rate": 0.1}}', True, 422),
        ('{"faults": {"error_rate": 0.1}}', False, 401),
    ],
)
def test_settings_a_running_oracle_cannot_take_are_refused(faulty_servers, body, key, status):
    endpoint = faulty_servers["user"]
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if key else {}
    answer = httpx.put(endpoint.base_url.removesuffix("/v1") + "/oracle/settings", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert set(_answers(endpoint, 3)) == {200}  # unchanged
