"""
What the RIM's modules do on MiniGrid/BabyAI (needs the ``minigrid`` and ``plots`` extras): which modules are active
at each step of an episode, against what is in view and what the mission says.

:func:`module_activity` plays a trained model (its actor core a :class:`~sb3_metarim.cores.rim.RIM`) and records, per step,
the active modules (the core's ``last_active``, as :class:`~sb3_metarim.cores.rim.ModuleActivity` counts them in training)
beside the objects and colours in the 7x7 view (decoded from the grid of ids with MiniGrid's ``IDX_TO_OBJECT`` and
``IDX_TO_COLOR``), the state of the task in view (what the agent carries, which doors are locked, closed or open:
the phases of a task such as DoorKey), the mission's words and whether the mission's object is in view.
:func:`activation_rates` turns that into mean activation rates per module and feature, :func:`plot_activity_heatmaps`
into heatmaps and :func:`reading` into a short text. ``scripts/module_analysis.py`` runs all of it on a harness
run's ``model.zip``.

.. code-block:: python

    frame = module_activity(model, env, n_episodes=50)   # env: wrapped as in training (mission tokens, grid ids)
    plot_activity_heatmaps(frame, "analysis/")
    print(reading(frame))
"""

import itertools
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from minigrid.core.constants import COLOR_TO_IDX, IDX_TO_COLOR, IDX_TO_OBJECT, OBJECT_TO_IDX, STATE_TO_IDX
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_metarim.cores.rim import RIM
from sb3_metarim.envs.minigrid import IMAGE_KEY, MISSION_KEY, MISSION_WORDS, PAD_ID, UNK_ID

UNIT_PREFIX = "unit_"
# Feature columns of module_activity's frame: counts of cells per object type and colour in view, the task's state
# (carrying, doors), mission words, and the step's place in the episode (a task's phases come in order, so a module
# that follows a phase also follows time: the two tables side by side tell them apart).
PREFIXES = {"object": "obj_", "colour": "colour_", "state": "state_", "word": "word_", "time": "time_"}
# Bounds of the time features: steps 0-3, 4-7, 8-15, 16-31, 32-63, 64 and later; their labels, in that order.
TIME_EDGES = (0, 4, 8, 16, 32, 64)
TIME_LABELS = (*(f"{first}-{following - 1}" for first, following in itertools.pairwise(TIME_EDGES)), f"{TIME_EDGES[-1]}+")
IDX_TO_STATE = {index: state for state, index in STATE_TO_IDX.items()}
# Cells that show nothing: out of sight, or free.
NOTHING = (OBJECT_TO_IDX["unseen"], OBJECT_TO_IDX["empty"])
# Colour counts leave walls out: they are all grey and everywhere.
COLOURLESS = (*NOTHING, OBJECT_TO_IDX["wall"])
# The mission's object: its first word among these (BabyAI: "go to the red ball"; MiniGrid: "... goal square"),
# with the colour word before it if there is one.
TARGET_TYPES = ("box", "ball", "key", "door", "goal")
ID_TO_WORD = {index: word for index, word in enumerate(MISSION_WORDS, start=UNK_ID + 1)}


def view_features(observation: dict[str, Any]) -> dict[str, Any]:
    """
    :param observation: One MiniGrid observation as the model sees it: ``"image"`` a grid of (object, colour, state)
        ids (``GridIdsWrapper``), ``"mission"`` token ids (``MissionTokenWrapper``).
    :return: ``obj_<type>``: cells of each object type in view (not unseen or empty); ``colour_<colour>``: cells of
        each colour among the objects in view (walls left out); ``state_carrying_<type>`` (or
        ``state_carrying_nothing``): 1 for what the agent carries (MiniGrid shows it in the agent's own cell, the
        bottom centre of the view); ``state_door_<locked|closed|open>``: doors in view in that state;
        ``word_<word>``: 1 for each mission word;
        ``mission``: the mission's text; ``target_in_view``: whether an object of the mission's type (and colour, if
        it names one; :data:`TARGET_TYPES`) is in view.
    """
    image = np.asarray(observation[IMAGE_KEY])
    grid = image.reshape(-1, 3)
    objects, colours, states = grid[:, 0], grid[:, 1], grid[:, 2]
    features: dict[str, Any] = {}
    for index in np.unique(objects):
        if index not in NOTHING:
            features[f"obj_{IDX_TO_OBJECT[int(index)]}"] = int((objects == index).sum())
    coloured = ~np.isin(objects, COLOURLESS)
    for index in np.unique(colours[coloured]):
        features[f"colour_{IDX_TO_COLOR[int(index)]}"] = int((colours[coloured] == index).sum())
    carried = int(image[image.shape[0] // 2, image.shape[1] - 1, 0])
    features[f"state_carrying_{'nothing' if carried in NOTHING else IDX_TO_OBJECT[carried]}"] = 1
    doors = objects == OBJECT_TO_IDX["door"]
    for index in np.unique(states[doors]):
        features[f"state_door_{IDX_TO_STATE[int(index)]}"] = int((states[doors] == index).sum())
    words = [ID_TO_WORD.get(int(token), "<unk>") for token in np.asarray(observation[MISSION_KEY]) if token != PAD_ID]
    for word in dict.fromkeys(words):
        features[f"word_{word}"] = 1
    features["mission"] = " ".join(words)
    in_view = False
    position = next((i for i, word in enumerate(words) if word in TARGET_TYPES), None)
    if position is not None:
        match = objects == OBJECT_TO_IDX[words[position]]
        if position > 0 and words[position - 1] in COLOR_TO_IDX:
            match &= colours == COLOR_TO_IDX[words[position - 1]]
        in_view = bool(match.any())
    features["target_in_view"] = int(in_view)
    return features


def time_feature(step: int) -> str:
    """:return: the time feature of an episode's step ``step`` (from 0): ``time_<first>-<last>`` of its
    :data:`TIME_EDGES` bucket, ``time_64+`` for the last."""
    return PREFIXES["time"] + TIME_LABELS[int(np.searchsorted(TIME_EDGES, step, side="right")) - 1]


def module_activity(
    model: BaseAlgorithm, env: gym.Env, n_episodes: int = 20, deterministic: bool = True, seed: int = 0
) -> pd.DataFrame:
    """
    Play ``n_episodes`` episodes and record, per step, which of the actor core's modules were active.

    :param model: A trained model whose actor core (``policy.lstm_actor``) is a RIM (``metarim_ppo``, ``rim_ppo``).
    :param env: One env, wrapped as in training (``MissionTokenWrapper``, ``GridIdsWrapper``).
    :param n_episodes: Episodes to play.
    :param deterministic: Play the most likely action (as the harness evaluates).
    :param seed: Episode ``i`` resets with ``seed + i``.
    :return: one row per step: ``episode``, ``step``, ``action``, ``reward``, ``unit_<i>`` (1 when module ``i`` was
        active), :func:`view_features` of the observation the action was chosen on and the step's
        :func:`time_feature` (feature columns absent from a step are 0).
    """
    core = getattr(model.policy, "lstm_actor", None)
    if not isinstance(core, RIM):
        raise ValueError(f"{type(model).__name__}'s actor core is {type(core).__name__}, not a RIM: no modules to analyse")
    rows = []
    for episode in range(n_episodes):
        observation, _ = env.reset(seed=seed + episode)
        state, start, step, done = None, True, 0, False
        while not done:
            starts = np.array([start])
            action, state = model.predict(observation, state=state, episode_start=starts, deterministic=deterministic)
            active = core.last_active.reshape(-1, core.num_units)[-1].cpu().numpy()
            row = {"episode": episode, "step": step, "action": int(np.asarray(action).item())}
            row |= {f"{UNIT_PREFIX}{i}": int(flag) for i, flag in enumerate(active)}
            row |= view_features(observation) | {time_feature(step): 1}
            observation, reward, terminated, truncated, _ = env.step(row["action"])
            row["reward"] = float(reward)
            rows.append(row)
            start, step, done = False, step + 1, terminated or truncated
    frame = pd.DataFrame(rows)
    features = [column for column in frame.columns if column.startswith(tuple(PREFIXES.values()))]
    frame[features] = frame[features].fillna(0).astype(int)
    return frame


def unit_columns(frame: pd.DataFrame) -> list[str]:
    return [column for column in frame.columns if column.startswith(UNIT_PREFIX)]


def activation_rates(frame: pd.DataFrame, kind: str, min_steps: int = 1) -> pd.DataFrame:
    """
    :param frame: :func:`module_activity`'s rows.
    :param kind: A key of :data:`PREFIXES`: ``"object"``, ``"colour"``, ``"state"``, ``"word"`` or ``"time"``.
    :param min_steps: Leave out features present at fewer steps.
    :return: per feature present (rows, most frequent first, time features in order; ``all steps`` last): each
        module's activation rate over the steps where the feature is present, and ``steps``, how many.
    """
    prefix = PREFIXES[kind]
    units = unit_columns(frame)
    rows = {}
    for column in [column for column in frame.columns if column.startswith(prefix)]:
        present = frame[column] > 0
        if present.sum() >= min_steps:
            rows[column.removeprefix(prefix)] = [*frame.loc[present, units].mean().tolist(), int(present.sum())]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[*units, "steps"])
    if kind == "time":  # in the episode's order
        table = table.loc[[label for label in TIME_LABELS if label in table.index]]
    else:
        table = table.sort_values("steps", ascending=False)
    table.loc["all steps"] = [*frame[units].mean().tolist(), len(frame)]
    table["steps"] = table["steps"].astype(int)
    return table


def rates_within_time(frame: pd.DataFrame, feature: str) -> pd.DataFrame:
    """
    Whether a feature moves the modules beyond what the step's place in the episode does: a task's phases come in
    order, so a module that follows a phase also follows time, and comparing steps of the same time bucket with and
    without the feature separates the two.

    :param frame: :func:`module_activity`'s rows.
    :param feature: A feature column, e.g. ``"state_door_open"``.
    :return: per time bucket (rows, in the episode's order) and module: the rate at steps with the feature present
        (``<unit> with``) and absent (``<unit> without``), and ``steps with`` / ``steps without``; NaN where a
        bucket has no such step.
    """
    if feature not in frame:
        raise ValueError(f"feature={feature!r} is not a column of the activity frame; it has {sorted(frame.columns)}")
    units = unit_columns(frame)
    present = frame[feature] > 0
    rows = {}
    for bucket in [label for label in TIME_LABELS if PREFIXES["time"] + label in frame]:
        in_bucket = frame[PREFIXES["time"] + bucket] > 0
        with_, without = frame[in_bucket & present], frame[in_bucket & ~present]
        row = {f"{unit} with": with_[unit].mean() for unit in units} | {
            f"{unit} without": without[unit].mean() for unit in units
        }
        rows[bucket] = row | {"steps with": len(with_), "steps without": len(without)}
    return pd.DataFrame.from_dict(rows, orient="index")


def rates_markdown(table: pd.DataFrame) -> str:
    """:return: :func:`activation_rates`'s table as a markdown table (rates to two decimals)."""
    units = [column for column in table.columns if column != "steps"]
    lines = [
        "| feature | steps | " + " | ".join(unit.removeprefix(UNIT_PREFIX) for unit in units) + " |",
        "|---|---|" + "---|" * len(units),
    ]
    for name, row in table.iterrows():
        lines.append(f"| {name} | {int(row['steps'])} | " + " | ".join(f"{row[unit]:.2f}" for unit in units) + " |")
    return "\n".join(lines)


def plot_activity_heatmaps(frame: pd.DataFrame, folder: str | Path, min_steps: int = 5) -> list[Path]:
    """
    Write ``modules_by_<kind>.png`` for each kind of :data:`PREFIXES` (module x feature: the mean
    activation rate over the steps where the feature is present, the rate over all steps in the last row) and
    ``modules_over_episode.png`` (the first episode's active modules, step by step).

    :return: the paths written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in PREFIXES:
        table = activation_rates(frame, kind, min_steps)
        units = unit_columns(frame)
        fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(units), 1.0 + 0.32 * len(table)))
        image = ax.imshow(table[units].to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(table[units].to_numpy(float)):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
        ax.set_xticks(range(len(units)), [unit.removeprefix(UNIT_PREFIX) for unit in units])
        ax.set_yticks(range(len(table)), [f"{name} ({steps})" for name, steps in table["steps"].items()], fontsize=7)
        ax.set(xlabel="module", title=f"activation rate by {kind} (steps)")
        fig.colorbar(image, ax=ax, fraction=0.05)
        fig.tight_layout()
        paths.append(folder / f"modules_by_{kind}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    episode = frame[frame["episode"] == frame["episode"].min()]
    fig, ax = plt.subplots(figsize=(min(2 + 0.12 * len(episode), 16), 2.5))
    ax.imshow(episode[unit_columns(frame)].to_numpy(float).T, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set(xlabel="step", ylabel="module", title=f"active modules over episode 0: {episode['mission'].iloc[0]}")
    fig.tight_layout()
    paths.append(folder / "modules_over_episode.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def reading(frame: pd.DataFrame, min_steps: int = 5) -> str:
    """
    :return: a short markdown reading: per module its overall activation rate and, for each kind of feature
        (:data:`PREFIXES`), the feature (present at ``min_steps`` steps or more, and not at every step) that raises
        its rate most above its overall rate, and the rates with the mission's object in view and out of view.
    """
    units = unit_columns(frame)
    overall = frame[units].mean()
    lines = [
        f"{len(frame)} steps over {frame['episode'].nunique()} episodes; success (positive reward) in "
        f"{int((frame.groupby('episode')['reward'].max() > 0).sum())}.",
        "",
        "| module | active | most raised by object | by colour | by state | by mission word | by time | "
        "target in view / not |",
        "|---|---|---|---|---|---|---|---|",
    ]
    tables = {kind: activation_rates(frame, kind, min_steps).drop(index="all steps") for kind in PREFIXES}
    # A feature present at every step (DoorKey's one mission, walls in a small room) tells nothing apart.
    tables = {kind: table[table["steps"] < len(frame)] for kind, table in tables.items()}
    seen = frame["target_in_view"] > 0
    for unit in units:
        cells = [unit.removeprefix(UNIT_PREFIX), f"{overall[unit]:.2f}"]
        for table in tables.values():
            if table.empty:
                cells.append("-")
                continue
            lift = table[unit] - overall[unit]
            best = lift.idxmax()
            cells.append(f"{best} ({table.loc[best, unit]:.2f}, {lift[best]:+.2f})")
        in_view = frame.loc[seen, unit].mean() if seen.any() else float("nan")
        out_of_view = frame.loc[~seen, unit].mean() if (~seen).any() else float("nan")
        cells.append(f"{in_view:.2f} / {out_of_view:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
