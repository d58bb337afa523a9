"""What an SB3 user relies on: save/load, predict, evaluate_policy, spaces, seeds, logging."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_metarim import MetaRIMPPO, RIMActorCriticPolicy
from sb3_metarim.meta_rim_ppo.policies import RIMMultiInputActorCriticPolicy

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
