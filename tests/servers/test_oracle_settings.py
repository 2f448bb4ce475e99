"""servers/oracle.py: the oracle server's settings travel as `server.oracle` of the model's config (one
declaration: the schema), and come back the same; anything else is refused."""

from __future__ import annotations

import pytest
from omegaconf.errors import ConfigKeyError

from tau_exp.config import FaultConfig, OracleConfig
from tau_exp.servers.oracle import settings_from_json, settings_to_json


def test_settings_survive_the_command_line():
    settings = OracleConfig(latency_s=0.2, faults=FaultConfig(error_rate=0.1, bad_arguments_rate=0.3, hang_s=2, seed=7))
    assert settings_from_json(settings_to_json(settings)) == settings


def test_an_unknown_setting_is_refused():
    with pytest.raises(ConfigKeyError):
        settings_from_json('{"faults": {"eror_rate": 0.1}}')
