"""tau_exp's results in tau2's own formats (`python -m tau_exp.export`, `__main__.py`).

- `results_file.py`: one configuration of job directories as tau2's `Results` (the JSON of
  tau2's CLI and the leaderboard's trajectories), built and validated with tau2's models.
- `leaderboard.py`: a leaderboard submission (submission.json and trajectories per domain),
  checked against what the leaderboard asks and validated with its vendored JSON schema
  (`leaderboard_schema.json`).

The other direction — tau2 results files read into reports, `compare` and the browser — is
`bench/tau2_results.py`, wired in `results/collect.py`.
"""
