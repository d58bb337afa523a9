"""
The MetaMaze table of MetODS (Chalvidal et al. 2022) from a suite's trained models: per variant, the cumulative
reward per 100-step episode, the success rate (the goal found at least once in the episode) and the steps to the
first reward (the episode's length when none came), on each of the suite's transfer levels (``trained``: the 9 x 9
maze, ``larger``: 13 x 13), IQM over seeds with 95% bootstrap CIs, beside the paper's numbers and a random walk
measured the same way.

Each finished run's ``model.zip`` plays its suite's transfer levels deterministically on fresh copies of the envs the
harness evaluates them on (the same seeds; the harness's last evaluation came after earlier ones on the same envs, so
its episodes, and its ``transfer.csv`` numbers, differ from these). ``scripts/maze_table.py`` writes the table.

.. code-block:: python

    specs = finished_runs(load_suite("metods"), Path("runs"))
    runs = maze_runs(specs, Path("runs"), n_episodes=100)    # one row per agent, seed and level
    print("\\n".join(maze_markdown(summarize(runs), "python scripts/maze_table.py", 100)))
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_metarim.benchmark.runner import ALGORITHMS, DONE_FILE, TRANSFER_SEED_OFFSET, Transfer, make_env
from sb3_metarim.benchmark.spec import RunSpec, SuiteSpec
from sb3_metarim.benchmark.stats import ci_text, iqm_interval

MAZE = "sb3_metarim/MetaMaze-v0"
RANDOM = "random walk"
METRICS = ("reward", "success", "steps_to_first_reward")
# MetODS's table: random / RL^2 / MetODS, (reward, success, steps to the first reward) per maze; the larger maze's
# success and steps are not given.
PAPER = {
    "random (paper)": {"trained": (3.8, 0.05, 96.8), "larger": (3.7, None, None)},
    "RL^2 (paper)": {"trained": (77.7, 0.962, 16.2), "larger": (28.1, None, None)},
    "MetODS (paper)": {"trained": (86.5, 0.966, 14.7), "larger": (34.9, None, None)},
}


class RandomWalk:
    """
    The uniformly random policy, with ``predict``'s signature, so that it plays through ``evaluate_policy``.

    :param env: The env it acts in (its action space is seeded with ``seed``).
    :param seed: Seed of the actions.
    """

    def __init__(self, env: VecEnv, seed: int) -> None:
        self.env = env
        self.env.action_space.seed(seed)

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]:
        """:return: one uniformly random action per env copy, and ``state`` unchanged (``deterministic`` is ignored)."""
        return np.array([self.env.action_space.sample() for _ in range(self.env.num_envs)]), state


def play(policy: Any, env: VecEnv, n_episodes: int) -> pd.DataFrame:
    """
    :param policy: A model (deterministic actions) or :class:`RandomWalk`.
    :param env: The evaluation env (MetaMaze through the run's wrappers).
    :param n_episodes: Episodes, spread over the env's copies as ``evaluate_policy`` does.
    :return: one row per episode: ``reward`` (the cumulative reward), ``success`` (1 if the goal was found at least
        once) and ``steps_to_first_reward`` (the episode's length when the goal was never found).
    """
    steps = np.zeros(env.num_envs, dtype=int)
    first = np.zeros(env.num_envs, dtype=int)  # 0: no reward yet
    episodes: list[dict[str, float]] = []

    def record(locals_: dict[str, Any], _globals: dict[str, Any]) -> None:
        index = locals_["i"]
        steps[index] += 1
        if locals_["reward"] > 0 and first[index] == 0:
            first[index] = steps[index]
        if locals_["done"]:
            found = first[index] > 0
            episodes.append({"success": float(found), "steps_to_first_reward": float(first[index] if found else steps[index])})
            steps[index] = first[index] = 0

    rewards, _ = evaluate_policy(
        policy, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True, callback=record
    )
    # evaluate_policy returns episodes in the order they end, the order ``record`` saw them end.
    return pd.DataFrame(episodes).assign(reward=rewards)


def level_rows(spec: RunSpec, root: Path, n_episodes: int, random_walk: bool = False) -> list[dict[str, Any]]:
    """
    :param spec: A finished run.
    :param root: The working directory of the harness's runs (``--runs``).
    :param n_episodes: Episodes per level.
    :param random_walk: Play :class:`RandomWalk` (seeded with the run's seed) instead of the run's model.
    :return: one row per transfer level of the run's env: the means of :data:`METRICS` over ``n_episodes``
        episodes on its evaluation envs.
    """
    folder = spec.folder(root)
    transfer = Transfer(spec, folder)
    name = RANDOM if random_walk else spec.variant.name
    model = None if random_walk else ALGORITHMS[spec.variant.algo].load(folder / "model.zip", device="cpu")
    rows = []
    for level in spec.env.transfer_envs:
        env = make_env(transfer.level_spec(level), train=False, seed_offset=TRANSFER_SEED_OFFSET)
        episodes = play(RandomWalk(env, spec.seed) if model is None else model, env, n_episodes)
        rows.append({"variant": name, "seed": spec.seed, "level": level, **episodes[list(METRICS)].mean()})
        env.close()
    return rows


def finished_runs(suite: SuiteSpec, root: Path) -> list[RunSpec]:
    """
    :param suite: The suite.
    :param root: The working directory of the harness's runs (``--runs``).
    :return: the suite's finished runs on :data:`MAZE`.
    """
    return [spec for spec in suite.runs(envs=[MAZE]) if (spec.folder(root) / DONE_FILE).exists()]


def maze_runs(
    specs: list[RunSpec], root: Path, n_episodes: int, log: Callable[[str], None] = lambda _message: None
) -> pd.DataFrame:
    """
    :param specs: Finished runs (:func:`finished_runs`).
    :param root: The working directory of the harness's runs (``--runs``).
    :param n_episodes: Episodes per run and level.
    :param log: Called with a line after each run.
    :return: :func:`level_rows` of every run, then of the random walk on every seed's envs.
    """
    rows = []
    for spec in specs:
        rows += level_rows(spec, root, n_episodes)
        log(f"{spec.describe()}: done")
    for seed in sorted({spec.seed for spec in specs}):
        rows += level_rows(next(spec for spec in specs if spec.seed == seed), root, n_episodes, random_walk=True)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """
    :param runs: :func:`maze_runs`' rows.
    :return: per variant and level, the number of runs and each metric's IQM over seeds with its 95% CI.
    """
    rows = []
    for (variant, level), group in runs.groupby(["variant", "level"], sort=False):
        row: dict[str, Any] = {"variant": variant, "level": level, "runs": len(group)}
        for metric in METRICS:
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = iqm_interval(group[metric].to_numpy(float))
        rows.append(row)
    return pd.DataFrame(rows)


def maze_markdown(summary: pd.DataFrame, command: str, n_episodes: int) -> list[str]:
    """
    :param summary: :func:`summarize`'s table.
    :param command: The command that made it, quoted in the text.
    :param n_episodes: Episodes per run and level.
    :return: the markdown lines of the table: the paper's agents, then ours, on the ``trained`` and ``larger`` levels.
    """

    def ours(variant: str, level: str, metric: str, fmt: str) -> str:
        row = summary[(summary["variant"] == variant) & (summary["level"] == level)].iloc[0]
        return ci_text(row[metric], row[f"{metric}_low"], row[f"{metric}_high"], fmt)

    def paper(value: float | None, fmt: str) -> str:
        return "-" if value is None else f"{value:{fmt}}"

    lines = [
        "# MetaMaze: the paper's table, ours beside it",
        "",
        f"`{command}`: each finished run's final model, {n_episodes} deterministic episodes of 100 steps on each maze "
        "(the harness's transfer evaluation envs and seeds); IQM over seeds [95% bootstrap CI]. Success: the goal "
        "found at least once in the episode (the paper does not define its own; its random agent's 5% with a reward "
        "of 3.8 suggests another definition). Steps to the first reward: 100 when none came. The random walk is "
        "measured here on the same episodes; the paper's numbers are at its own, far larger, budget.",
        "",
        "| agent | runs | reward 9 x 9 | success 9 x 9 | steps to first reward 9 x 9 | reward 13 x 13 | success 13 x 13 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, levels in PAPER.items():
        (reward, success, steps), (larger, larger_success, _) = levels["trained"], levels["larger"]
        cells = [
            paper(reward, ".1f"),
            paper(success, ".3f"),
            paper(steps, ".1f"),
            paper(larger, ".1f"),
            paper(larger_success, ".3f"),
        ]
        lines.append(f"| {name} | - | " + " | ".join(cells) + " |")
    for variant in summary["variant"].unique():
        runs = int(summary.loc[summary["variant"] == variant, "runs"].min())
        cells = [
            ours(variant, "trained", "reward", ".1f"),
            ours(variant, "trained", "success", ".3f"),
            ours(variant, "trained", "steps_to_first_reward", ".1f"),
            ours(variant, "larger", "reward", ".1f"),
            ours(variant, "larger", "success", ".3f"),
        ]
        lines.append(f"| {variant} | {runs} | " + " | ".join(cells) + " |")
    return lines
