"""What an SB3 user relies on: save/load, predict, evaluate_policy, spaces, seeds, logging."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_metarim import MetaLSTMPPO, MetaRIMPPO, RIMActorCriticPolicy
from sb3_metarim.policies import RIMMultiInputActorCriticPolicy
from sb3_metarim.rim import RIMConfig

from .conftest import SMALL_CORE


def make_model(env, **kwargs) -> MetaRIMPPO:
    args = dict(n_steps=16, batch_size=16, n_epochs=2, seed=0, slow_interval=1, policy_kwargs=dict(SMALL_CORE)) | kwargs
    return MetaRIMPPO("MlpPolicy", env, **args)


def rollout_actions(model, obs, n_steps: int = 6) -> list[np.ndarray]:
    """Deterministic actions along a fixed observation sequence, carrying the state."""
    state, starts, actions = None, np.ones(len(obs), dtype=bool), []
    for _ in range(n_steps):
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros_like(starts)
        actions.append(action)
    return actions


@pytest.mark.parametrize(
    "meta, core_options",
    [(True, {}), (False, {}), (True, {"dense_size": 4, "selection": "straight_through"}), (True, {"sticky_bonus": 0.5})],
)
def test_save_load_round_trip(cue_env, tmp_path, meta, core_options):
    policy_kwargs = SMALL_CORE | core_options
    model = make_model(
        cue_env, meta=meta, fast_span=3, slow_n_epochs=2, slow_learning_rate=5e-5, slow_max_kl=0.5, policy_kwargs=policy_kwargs
    )
    model.learn(64)
    model.save(tmp_path / "model")
    loaded = MetaRIMPPO.load(tmp_path / "model", env=cue_env)
    for name in (
        "meta",
        "fast_span",
        "slow_interval",
        "slow_n_epochs",
        "slow_learning_rate",
        "slow_parameters",
        "slow_max_kl",
        "_n_rollouts_trained",
    ):
        assert getattr(loaded, name) == getattr(model, name), name
    assert loaded.policy.core_kwargs == model.policy.core_kwargs
    for key, value in model.policy.state_dict().items():
        assert th.equal(value, loaded.policy.state_dict()[key]), key
    optimizers = ["optimizer"] + (["slow_optimizer"] if meta else [])
    for name in optimizers:
        saved = (model.policy.optimizer if name == "optimizer" else model.slow_optimizer).state_dict()
        restored = (loaded.policy.optimizer if name == "optimizer" else loaded.slow_optimizer).state_dict()
        assert saved["param_groups"][0]["lr"] == restored["param_groups"][0]["lr"]
        for index, state in saved["state"].items():
            assert th.equal(state["exp_avg"], restored["state"][index]["exp_avg"]), name
    obs = cue_env.reset()
    for expected, got in zip(rollout_actions(model, obs), rollout_actions(loaded, obs), strict=True):
        np.testing.assert_array_equal(expected, got)
    before = {k: v.clone() for k, v in loaded.policy.state_dict().items()}
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.num_timesteps == 128
    assert any(not th.equal(before[k], v) for k, v in loaded.policy.state_dict().items())


def test_a_model_saved_before_the_sticky_default_loads_with_the_paper_selection(cue_env, tmp_path):
    """sticky_bonus's default was 0, then 0.1, now 0.3: a new model's file records it (so a file of the 0.1 days
    says 0.1), and a file without it predates the first change, so it loads with 0, the selection it was trained
    with, and acts as it did."""
    model = make_model(cue_env)
    assert model.policy_kwargs["sticky_bonus"] == RIMConfig.sticky_bonus == 0.3 == model.policy.core_config.sticky_bonus
    model.save(tmp_path / "new")
    assert MetaRIMPPO.load(tmp_path / "new").policy.core_config.sticky_bonus == 0.3
    make_model(cue_env, policy_kwargs=dict(SMALL_CORE, sticky_bonus=0.1)).save(tmp_path / "day")
    assert MetaRIMPPO.load(tmp_path / "day").policy.core_config.sticky_bonus == 0.1
    legacy = make_model(cue_env, policy_kwargs=dict(SMALL_CORE, sticky_bonus=0.0))
    del legacy.policy_kwargs["sticky_bonus"]  # what a model saved before the change holds
    legacy.save(tmp_path / "legacy")
    loaded = MetaRIMPPO.load(tmp_path / "legacy", env=cue_env)
    assert loaded.policy.core_config.sticky_bonus == 0.0 and loaded.policy.lstm_actor.hidden_size == 32
    obs = cue_env.reset()
    for expected, got in zip(rollout_actions(legacy, obs), rollout_actions(loaded, obs), strict=True):
        np.testing.assert_array_equal(expected, got)
    # Cores without a selection are left alone.
    assert "sticky_bonus" not in MetaLSTMPPO("MlpPolicy", cue_env, n_steps=16, batch_size=16).policy_kwargs


def test_a_model_saved_before_the_round_21_defaults_loads_as_trained(cue_env, tmp_path):
    """unit_size 32 -> 16, dense_size 0 -> 96 and slow_max_kl None -> 0.05 (2026-11-28, round 21): a new model's file
    records them; a file without them predates the change and loads with the paper's core and no limit, and acts as
    it did. With lstm_hidden_size such a file's width was the modules' alone."""
    model = MetaRIMPPO("MlpPolicy", cue_env, n_steps=16, batch_size=16)
    assert model.policy_kwargs["unit_size"] == 16 and model.policy_kwargs["dense_size"] == 96 and model.slow_max_kl == 0.05
    model.save(tmp_path / "new")
    loaded = MetaRIMPPO.load(tmp_path / "new")
    assert (loaded.policy.core_config.unit_size, loaded.policy.core_config.dense_size, loaded.slow_max_kl) == (16, 96, 0.05)

    legacy = MetaRIMPPO("MlpPolicy", cue_env, n_steps=16, batch_size=16, policy_kwargs=dict(unit_size=32, dense_size=0))
    for name in ("unit_size", "dense_size"):
        del legacy.policy_kwargs[name]  # what a model saved before the change holds
    del legacy.slow_max_kl
    legacy.save(tmp_path / "legacy")
    loaded = MetaRIMPPO.load(tmp_path / "legacy", env=cue_env)
    assert (loaded.policy.core_config.unit_size, loaded.policy.core_config.dense_size, loaded.slow_max_kl) == (32, 0, None)
    assert MetaRIMPPO.load(tmp_path / "legacy", slow_max_kl=0.1).slow_max_kl == 0.1  # an argument given wins
    obs = cue_env.reset()
    for expected, got in zip(rollout_actions(legacy, obs), rollout_actions(loaded, obs), strict=True):
        np.testing.assert_array_equal(expected, got)

    width = MetaRIMPPO("MlpPolicy", cue_env, n_steps=16, policy_kwargs=dict(lstm_hidden_size=64, num_units=4, dense_size=0))
    for name in ("unit_size", "dense_size"):
        del width.policy_kwargs[name]
    width.save(tmp_path / "width")
    config = MetaRIMPPO.load(tmp_path / "width").policy.core_config
    assert (config.num_units, config.unit_size, config.dense_size) == (4, 16, 0)
    # A new model with lstm_hidden_size records the split it made.
    halves = MetaRIMPPO("MlpPolicy", cue_env, n_steps=16, policy_kwargs=dict(lstm_hidden_size=64, num_units=4))
    assert (halves.policy_kwargs["unit_size"], halves.policy_kwargs["dense_size"]) == (8, 32)
    halves.save(tmp_path / "halves")
    assert MetaRIMPPO.load(tmp_path / "halves").policy.core_config.dense_size == 32


def test_a_policy_saved_alone_by_an_older_version_loads_as_trained(cue_env, tmp_path):
    """policy.save files hold every option of the core as it was then: one saved before dense_size and sticky_bonus
    existed has neither and loads without them (0), as it was trained; an lstm-core one saved before that core had
    options of its own holds the RIM's, which it never used."""
    rim = make_model(cue_env, policy_kwargs=dict(SMALL_CORE, sticky_bonus=0.0))
    data = rim.policy._get_constructor_parameters()
    del data["dense_size"], data["sticky_bonus"]
    th.save({"state_dict": rim.policy.state_dict(), "data": data}, tmp_path / "rim.pt")
    policy = RIMActorCriticPolicy.load(tmp_path / "rim.pt")
    assert policy.core_config == rim.policy.core_config

    lstm = make_model(cue_env, policy_kwargs=dict(recurrent_core="lstm", lstm_hidden_size=24))
    data = lstm.policy._get_constructor_parameters()
    data = {**RIMConfig().as_dict(), **data}  # the RIM's options beside the lstm core's own
    th.save({"state_dict": lstm.policy.state_dict(), "data": data}, tmp_path / "lstm.pt")
    policy = RIMActorCriticPolicy.load(tmp_path / "lstm.pt")
    assert policy.lstm_actor.hidden_size == 24
    obs = cue_env.reset()
    actions = [policy.predict(obs, deterministic=True)[0], lstm.policy.predict(obs, deterministic=True)[0]]
    np.testing.assert_array_equal(*actions)


def test_policy_saved_alone_keeps_its_core(cue_env, tmp_path):
    model = make_model(cue_env, policy_kwargs=dict(SMALL_CORE, cell="gru", comm_heads=2))
    model.policy.save(tmp_path / "policy.pt")
    policy = RIMActorCriticPolicy.load(tmp_path / "policy.pt")
    assert policy.core_kwargs == model.policy.core_kwargs
    assert policy.lstm_actor.cell_type == "gru" and policy.lstm_actor.comm_heads == 2
    obs = cue_env.reset()
    for expected, got in zip(rollout_actions(model.policy, obs), rollout_actions(policy, obs), strict=True):
        np.testing.assert_array_equal(expected, got)


def test_predict_with_and_without_state(cue_env):
    model = make_model(cue_env)
    obs = cue_env.reset()
    action, state = model.predict(obs)
    # The state: the 4 modules of 8, then their last activity (the default sticky_bonus replays it in training).
    assert action.shape == (2,) and state[0].shape == (1, 2, 36)
    action, next_state = model.predict(obs, state=state, episode_start=np.zeros(2, dtype=bool))
    assert not np.array_equal(state[0], next_state[0])
    single, single_state = model.predict(obs[0])
    assert np.shape(single) == () and single_state[0].shape == (1, 1, 36)


def test_evaluate_policy(cue_env):
    model = make_model(cue_env)
    mean, std = evaluate_policy(model, cue_env, n_eval_episodes=6)
    assert 0.0 <= mean <= 1.0 and std >= 0.0


def test_box_actions():
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = make_model(env)
    model.learn(64)
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (2, 1) and np.all(np.abs(action) <= 2.0)


def test_dict_observations_with_multi_input_policy():
    env = make_vec_env(SimpleMultiObsEnv, n_envs=2, seed=0)
    model = MetaRIMPPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, policy_kwargs=dict(SMALL_CORE))
    assert isinstance(model.policy, RIMMultiInputActorCriticPolicy)
    model.learn(64)
    model.predict(env.reset())


def test_cnn_policy():
    env = make_vec_env(FakeImageEnv, n_envs=1, seed=0, env_kwargs=dict(screen_height=36, screen_width=36, n_channels=1))
    model = MetaRIMPPO("CnnPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, policy_kwargs=dict(SMALL_CORE))
    model.learn(16)


@pytest.mark.parametrize("kwargs", [dict(shared_lstm=True, enable_critic_lstm=False), dict(enable_critic_lstm=False)])
def test_critic_core_options(cue_env, kwargs):
    model = make_model(cue_env, policy_kwargs=dict(SMALL_CORE, **kwargs))
    assert model.policy.lstm_critic is None
    model.learn(32)


def test_same_seed_same_model(cue_env):
    def trained_parameters():
        env = make_vec_env("sb3_metarim/CueMemory-v0", n_envs=2, seed=0)
        model = make_model(env, seed=3)
        model.learn(64)
        return model.policy.state_dict()

    first, second = trained_parameters(), trained_parameters()
    assert all(th.equal(first[key], second[key]) for key in first)


def test_tensorboard_callbacks_and_progress_bar(cue_env, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = make_model(cue_env, tensorboard_log=str(tmp_path / "tb"), verbose=0)
    checkpoints = CheckpointCallback(save_freq=16, save_path=str(tmp_path / "ckpt"), name_prefix="metarim")
    model.learn(64, callback=checkpoints, progress_bar=True)
    runs = list((tmp_path / "tb").iterdir())
    assert [run.name for run in runs] == ["MetaRIMPPO_1"]
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/approx_kl",
        "train/slow_approx_kl",
        "train/learning_rate",
        "train/slow_learning_rate",
        "rim/active_rate_unit0",
    } <= tags
    assert len(list((tmp_path / "ckpt").glob("metarim_*.zip"))) == 2
