"""Following jobs and sweeps: the job's W&B run (`wandb_run`), Hydra's callbacks (`callbacks`),
the sweep summary (`sweep`) and a running sweep's live progress (`status`)."""
