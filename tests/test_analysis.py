"""sb3_metarim.benchmark.analysis: which RIM modules are active against what is in view, on a tiny untrained model."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_metarim import MetaRIMPPO
from sb3_metarim.benchmark.analysis import (
    activation_rates,
    module_activity,
    plot_activity_heatmaps,
    rates_within_time,
    reading,
    time_feature,
    view_features,
)
from sb3_metarim.common.torch_layers import MiniGridFeaturesExtractor
from sb3_metarim.envs.minigrid import GridIdsWrapper, MissionTokenWrapper, tokenize_mission

ENV_ID = "BabyAI-GoToLocalS5N2-v0"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "module_analysis.py"
EXTRACTOR = dict(
    features_extractor_class=MiniGridFeaturesExtractor,
    features_extractor_kwargs=dict(image_features_dim=8, word_embedding_dim=4, mission_features_dim=8),
)


def wrapped(env: gym.Env) -> gym.Env:
    return GridIdsWrapper(MissionTokenWrapper(env))


def test_view_features_decode_the_grid_and_the_mission():
    image = np.zeros((7, 7, 3), dtype=np.uint8)  # all unseen
    image[0, :, 0] = 2  # a row of (grey) walls
    image[0, :, 1] = 5
    image[3, 3] = (6, 0, 0)  # a red ball
    image[4, 4] = (6, 2, 0)  # a blue ball
    image[5, 5] = (5, 0, 0)  # a red key
    image[6, 6] = (1, 0, 0)  # empty
    image[1, 1] = image[1, 2] = (4, 4, 2)  # two locked yellow doors
    image[1, 3] = (4, 4, 0)  # an open one
    features = view_features({"image": image, "mission": tokenize_mission("go to the red key")})
    objects = {k: v for k, v in features.items() if k.startswith("obj_")}
    assert objects == {"obj_wall": 7, "obj_ball": 2, "obj_key": 1, "obj_door": 3}
    assert {k: v for k, v in features.items() if k.startswith("colour_")} == {
        "colour_red": 2,
        "colour_blue": 1,
        "colour_yellow": 3,
    }
    # The agent's cell (bottom centre of the view) shows what it carries: nothing here, a key below.
    states = {k: v for k, v in features.items() if k.startswith("state_")}
    assert states == {"state_carrying_nothing": 1, "state_door_locked": 2, "state_door_open": 1}
    image[3, 6] = (5, 4, 0)  # a yellow key in the agent's cell
    assert view_features({"image": image, "mission": tokenize_mission("go to the red key")})["state_carrying_key"] == 1
    assert {k for k in features if k.startswith("word_")} == {"word_go", "word_to", "word_the", "word_red", "word_key"}
    assert features["mission"] == "go to the red key" and features["target_in_view"] == 1
    assert view_features({"image": image, "mission": tokenize_mission("go to the blue key")})["target_in_view"] == 0
    assert view_features({"image": image, "mission": tokenize_mission("go to a ball")})["target_in_view"] == 1


def test_time_features_bucket_the_steps_of_an_episode():
    labels = [time_feature(step) for step in (0, 3, 4, 7, 8, 15, 16, 63, 64, 500)]
    assert labels == [f"time_{b}" for b in ("0-3", "0-3", "4-7", "4-7", "8-15", "8-15", "16-31", "32-63", "64+", "64+")]


def test_module_activity_on_a_tiny_model(tmp_path):
    core = dict(num_units=3, top_k=2, unit_size=4, input_key_size=4, input_value_size=4, comm_key_size=4, comm_value_size=4)
    venv = make_vec_env(ENV_ID, n_envs=1, seed=0, wrapper_class=wrapped)
    model = MetaRIMPPO("MultiInputPolicy", venv, n_steps=8, batch_size=8, seed=0, policy_kwargs=EXTRACTOR | core)
    frame = module_activity(model, wrapped(gym.make(ENV_ID)), n_episodes=2)
    assert frame["episode"].unique().tolist() == [0, 1]
    assert (frame.groupby("episode")["step"].apply(lambda s: s.tolist() == list(range(len(s))))).all()
    units = ["unit_0", "unit_1", "unit_2"]
    assert (frame[units].sum(axis=1) == 2).all()  # top_k of num_units active at every step
    assert frame["word_go"].eq(1).all() and frame["obj_wall"].ge(0).all() and frame["target_in_view"].isin([0, 1]).all()
    times = frame.filter(like="time_")
    assert times.sum(axis=1).eq(1).all() and frame.loc[frame["step"] == 0, "time_0-3"].eq(1).all()
    rates = activation_rates(frame, "object")
    assert list(rates.columns) == [*units, "steps"] and rates.index[-1] == "all steps"
    assert rates.loc["all steps", "steps"] == len(frame) and rates[units].to_numpy().max() <= 1
    assert rates.loc["all steps", units].sum() == pytest.approx(2)
    paths = plot_activity_heatmaps(frame, tmp_path, min_steps=1)
    assert [path.name for path in paths] == [
        "modules_by_object.png",
        "modules_by_colour.png",
        "modules_by_state.png",
        "modules_by_word.png",
        "modules_by_time.png",
        "modules_over_episode.png",
    ]
    assert all(path.stat().st_size > 0 for path in paths)
    text = reading(frame, min_steps=1)
    assert text.count("\n| ") == 1 + 3  # the separator and one row per module

    # Within a time bucket: the rate with and without a feature, each over its own steps.
    within = rates_within_time(frame, "word_go")
    assert within.loc["0-3", "steps with"] == (frame["step"] <= 3).sum() and within["steps without"].eq(0).all()
    early = frame[frame["step"] <= 3]
    assert within.loc["0-3", "unit_0 with"] == pytest.approx(early["unit_0"].mean())
    with pytest.raises(ValueError, match="feature='obj_dragon'"):
        rates_within_time(frame, "obj_dragon")

    lstm = RecurrentPPO("MultiInputLstmPolicy", venv, n_steps=8, batch_size=8, policy_kwargs=EXTRACTOR)
    with pytest.raises(ValueError, match="not a RIM"):
        module_activity(lstm, wrapped(gym.make(ENV_ID)), n_episodes=1)


def test_the_script_analyses_a_harness_run_folder(tmp_path):
    core = dict(num_units=2, top_k=1, unit_size=4, input_key_size=4, input_value_size=4, comm_key_size=4, comm_value_size=4)
    venv = make_vec_env(ENV_ID, n_envs=1, seed=0, wrapper_class=wrapped)
    run = tmp_path / "runs/paper" / ENV_ID / "metarim_ppo/seed0"  # a harness run folder
    MetaRIMPPO("MultiInputPolicy", venv, n_steps=8, batch_size=8, seed=0, policy_kwargs=EXTRACTOR | core).save(
        run / "model.zip"
    )
    wrappers = ["sb3_metarim.envs.minigrid.MissionTokenWrapper", "sb3_metarim.envs.minigrid.GridIdsWrapper"]
    config = {"env_id": ENV_ID, "env_kwargs": {}, "variant": "metarim_ppo", "algo": "metarim_ppo", "seed": 0}
    (run / "config.json").write_text(json.dumps(config | {"hyperparams": {"env_wrapper": wrappers}}))
    argv = [str(run), "--episodes", "2", "--min-steps", "1", "--env-id", "BabyAI-GoToLocalS6N2-v0"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--within-time", "state_carrying_nothing"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path("benchmarks/paper/analysis", ENV_ID, "metarim_ppo/seed0")  # the default output folder, from the run's
    assert f"wrote {out / 'activity.csv'}" in result.stdout
    out = tmp_path / out
    assert {path.name for path in out.iterdir()} == {
        *("activity.csv", "analysis.md", "modules_over_episode.png"),
        *(f"modules_by_{kind}.png" for kind in ("object", "colour", "state", "word", "time")),
    }
    text = (out / "analysis.md").read_text()
    assert (
        "on BabyAI-GoToLocalS6N2-v0" in text
        and "| all steps |" in text
        and "Command: `python scripts/module_analysis.py" in text
        and "## Within the same steps: with / without `state_carrying_nothing`" in text
    )
