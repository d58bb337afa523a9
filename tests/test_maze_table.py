"""sb3_metarim.benchmark.maze: the maze metrics per episode against SB3's evaluate_policy; scripts/maze_table.py: the
table from a tiny suite."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_metarim import MetODSPPO
from sb3_metarim.benchmark.cli import main as benchmark
from sb3_metarim.benchmark.maze import RandomWalk, play

REPO = Path(__file__).resolve().parents[1]
MAZE = "sb3_metarim/MetaMaze-v0"
TINY_METODS = {"num_neurons": 8, "recursions": 1}


def test_episode_metrics_agree_with_the_rewards():
    env = make_vec_env(MAZE, n_envs=3, seed=5)
    episodes = play(RandomWalk(env, seed=0), env, n_episodes=30)
    assert len(episodes) == 30
    assert np.all(episodes["reward"] % 10 == 0)  # the goal pays 10, nothing else pays
    assert np.array_equal(episodes["success"] == 1, episodes["reward"] > 0)
    found = episodes["success"] == 1
    assert episodes.loc[~found, "steps_to_first_reward"].eq(100).all()
    assert episodes.loc[found, "steps_to_first_reward"].between(1, 100).all()
    assert found.any() and not found.all()  # a random walk finds the goal in some episodes, not all


def test_play_reads_the_same_episodes_as_evaluate_policy():
    model = MetODSPPO(
        "MlpPolicy", make_vec_env(MAZE, n_envs=2, seed=0), n_steps=16, batch_size=32, seed=0, policy_kwargs=TINY_METODS
    )
    mine = play(model, make_vec_env(MAZE, n_envs=2, seed=7), n_episodes=6)
    theirs, _ = evaluate_policy(model, make_vec_env(MAZE, n_envs=2, seed=7), n_eval_episodes=6, return_episode_rewards=True)
    assert mine["reward"].tolist() == theirs


def test_the_table_from_a_tiny_suite(tmp_path):
    suite = {
        "suite": "tiny_maze",
        "seeds": [0, 1],
        "hyperparams": {"n_envs": 2, "n_steps": 16, "batch_size": 32, "n_epochs": 1},
        "envs": {
            MAZE: {
                "n_timesteps": 64,
                "eval_freq": 64,
                "n_eval_episodes": 2,
                "n_eval_envs": 2,
                "score_range": [4.8, 141.0],
                "threshold": 50.0,
                "env_kwargs": {"episode_steps": 20},
                "transfer_envs": {
                    "trained": {"env_id": MAZE, "env_kwargs": {"episode_steps": 20}},
                    "larger": {"env_id": MAZE, "env_kwargs": {"episode_steps": 20, "size": 13}},
                },
                "transfer_episodes": 2,
            }
        },
        "variants": {"metods_ppo": {"algo": "metods_ppo", "hyperparams": {"policy_kwargs": TINY_METODS}}},
    }
    path = tmp_path / "tiny_maze.yml"
    path.write_text(yaml.safe_dump(suite))
    assert benchmark(["run", str(path), "--runs", str(tmp_path)]) == 0

    result = subprocess.run(
        [
            sys.executable,
            "scripts/maze_table.py",
            "--runs",
            str(tmp_path),
            "--results",
            str(tmp_path),
            "--suite",
            str(path),
            "--episodes",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "tiny_maze" / "maze" / "maze.md").read_text()
    runs = pd.read_csv(tmp_path / "tiny_maze" / "maze" / "runs.csv")
    assert sorted(runs["variant"].unique()) == ["metods_ppo", "random walk"]
    assert len(runs) == 8  # 2 agents x 2 seeds x 2 levels
    assert runs["steps_to_first_reward"].between(1, 20).all()
    assert "| MetODS (paper) | - | 86.5 | 0.966 | 14.7 | 34.9 | - |" in table
    assert "| metods_ppo | 2 |" in table and "| random walk | 2 |" in table
