"""slurm_client.py: Slurm's time formats (the live commands are exercised by the Slurm tier in
tests/servers/test_shared_servers.py and tests/tau_exp_launcher/)."""

from __future__ import annotations

import pytest

from tau_exp.slurm_client import parse_time_limit


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("infinite", None),
        ("UNLIMITED", None),
        ("30", 30),
        ("1:30", 2),
        ("2:00:00", 120),
        ("1-00:00:00", 1440),
        ("3-12", 5040),
        ("0:30", 1),
        ("1-02:03:00", 1563),
    ],
)
def test_time_limits_read_in_minutes_rounding_seconds_up(text, minutes):
    assert parse_time_limit(text) == minutes
