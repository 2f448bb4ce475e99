"""job/outcome.py: which run directories tau_exp refuses before Hydra creates them (the callback
that prints the refusal runs in launch.py; tests/test_config.py drives it end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.job.outcome import unusable_directory


@pytest.mark.parametrize(
    "directory, cause",
    [
        ("/proc/x", "it cannot be created: No such file or directory"),  # permissions say yes, even to root
        ("/proc", "it cannot be written to"),
        ("/sys/kernel/tau_exp_job", "it cannot be created"),
    ],
)
def test_a_directory_the_system_refuses_is_named_whatever_its_permissions_say(directory, cause):
    problem = unusable_directory(Path(directory))
    assert problem is not None and problem.startswith(cause), problem
    assert not Path(directory).exists() or directory == "/proc"


def test_a_usable_directory_is_accepted_and_the_try_leaves_nothing_behind(tmp_path):
    assert unusable_directory(tmp_path / "new" / "job") is None
    assert list(tmp_path.iterdir()) == []  # made to try, and removed again
    assert unusable_directory(tmp_path) is None
    assert list(tmp_path.iterdir()) == []
