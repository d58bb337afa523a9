"""rl-zoo3 for our algorithms: the CLI (``sb3-metarim-train`` / ``-enjoy``), Optuna tuning and learning-curve plots."""
