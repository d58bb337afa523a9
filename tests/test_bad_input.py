"""
Bad input is a clear error, nothing silently wrong: our own constructor arguments and the cores' options (a property
test; RecurrentPPO's arguments and the spaces are SB3's to check), a foreign model zip, a file from another minor
version, NaN from the env through SB3's VecCheckNan, a loss that turns NaN.
"""

import os
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecCheckNan

import sb3_metarim
from sb3_metarim import MetaRIMPPO
from sb3_metarim.meta_rim_ppo.meta_rim_ppo import NonFiniteLossError

from .conftest import SMALL_CORE

NAN, INF = float("nan"), float("inf")

# Each argument: (valid values, invalid values). Invalid ones must raise a ValueError naming the argument.
ARGUMENTS = {
    "fast_span": (st.integers(1, 16), st.sampled_from([0, -1, 2.0])),
    "slow_interval": (st.integers(1, 4), st.sampled_from([0, "2"])),
    "slow_n_epochs": (st.integers(1, 2), st.sampled_from([0, -3])),
    "slow_learning_rate": (st.floats(1e-5, 1e-3), st.sampled_from([0.0, -1e-4, "slow"])),
    "slow_max_kl": (st.one_of(st.none(), st.floats(0.01, 1.0)), st.sampled_from([0.0, -0.1, NAN, "0.1"])),
    "slow_parameters": (st.sampled_from([None, ["input_attention"]]), st.sampled_from([[], "attention", ["("], ["nothing"]])),
}
# The RIM core's options, and RecurrentPPO's policy arguments that a RIM gives a meaning of its own.
POLICY_ARGUMENTS = {
    "num_units": (st.integers(2, 4), st.sampled_from([0, -1, 2.0])),
    "unit_size": (st.integers(1, 8), st.sampled_from([0, -8])),
    "cell": (st.sampled_from(["lstm", "gru"]), st.sampled_from(["rnn", 3])),
    "dropout": (st.sampled_from([0.0, 0.1]), st.sampled_from([1.0, -0.1, "none"])),
    "dense_size": (st.sampled_from([0, 4]), st.sampled_from([-1, 2.5])),
    "sticky_bonus": (st.sampled_from([0.0, 0.3]), st.sampled_from([-0.1, INF, True])),
    "selection": (st.sampled_from(["hard", "straight_through"]), st.sampled_from(["soft"])),
    "comm_heads": (st.integers(1, 2), st.sampled_from([0, 1.5])),
    "num_neurons": (st.nothing(), st.just(16)),  # an option of another core
    "n_lstm_layers": (st.sampled_from([1, 2]), st.sampled_from([0, -1, 1.5])),
    "lstm_kwargs": (st.sampled_from([None, {}, dict(dropout=0.1)]), st.sampled_from([dict(bias=False)])),
}


def draw(data, table, broken):
    """Draw values for some of the arguments of ``table``, invalid ones for ``broken``; :return: values, invalid names."""
    values, invalid = {}, set()
    for name, (good, bad) in table.items():
        if name in broken:
            values[name] = data.draw(bad, label=name)
            invalid.add(name)
        elif data.draw(st.booleans(), label=f"{name} given"):
            values[name] = data.draw(good, label=name)
    return values, invalid


BREAKABLE = [*ARGUMENTS, *POLICY_ARGUMENTS]


EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", 80))


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_invalid_combination_is_a_value_error_naming_the_argument(data):
    broken = data.draw(st.lists(st.sampled_from(BREAKABLE), min_size=1, max_size=2, unique=True), label="broken")
    if data.draw(st.booleans(), label="all valid"):
        broken = []
    arguments, invalid = draw(data, ARGUMENTS, broken)
    policy_kwargs, invalid_policy = draw(data, POLICY_ARGUMENTS, broken)
    invalid |= invalid_policy
    # Combinations each valid alone but not together, and the argument the error must name.
    num_units = policy_kwargs.get("num_units", SMALL_CORE["num_units"])
    top_k = data.draw(st.integers(1, 4) if data.draw(st.integers(0, 9), label="top_k above?") else st.just(5), label="top_k")
    policy_kwargs = {**SMALL_CORE, **policy_kwargs, "top_k": top_k}
    if isinstance(num_units, int) and top_k > num_units and "num_units" not in invalid:
        invalid.add("top_k")
    if data.draw(st.integers(0, 4), label="lstm_hidden_size") == 0 and isinstance(num_units, int) and num_units > 0:
        # The width goes to the modules and the dense LSTM: the modules take what dense_size leaves, in equal shares.
        width = data.draw(st.integers(2, 24), label="width")
        policy_kwargs.pop("unit_size", None)
        invalid.discard("unit_size")  # the width sets it now
        policy_kwargs["lstm_hidden_size"] = width
        dense_size = policy_kwargs["dense_size"]
        if "dense_size" not in invalid and (dense_size >= width or (width - dense_size) % num_units):
            invalid.add("lstm_hidden_size")

    def build():
        return MetaRIMPPO("MlpPolicy", "CartPole-v1", n_steps=8, batch_size=8, policy_kwargs=policy_kwargs, **arguments)

    event("valid: constructs" if not invalid else f"{len(invalid)} invalid")
    if not invalid:
        build()
        return
    with pytest.raises(ValueError) as error:  # any other exception fails the test
        build()
    message = str(error.value)
    assert any(re.search(rf"\b{re.escape(name)}\b", message) for name in invalid), (invalid, message)


def test_a_file_from_another_minor_version_warns_naming_both(tmp_path, cue_env):
    model = MetaRIMPPO("MlpPolicy", cue_env, n_steps=8, batch_size=8, policy_kwargs=SMALL_CORE)
    assert model.sb3_metarim_version == sb3_metarim.__version__
    model.save(tmp_path / "same")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MetaRIMPPO.load(tmp_path / "same")
    model.sb3_metarim_version = "0.0.1"
    model.save(tmp_path / "older")
    with pytest.warns(UserWarning, match=rf"saved by sb3-metarim 0.0.1, loaded by {re.escape(sb3_metarim.__version__)}"):
        loaded = MetaRIMPPO.load(tmp_path / "older")
    assert loaded.sb3_metarim_version == sb3_metarim.__version__


def test_a_zip_saved_by_recurrent_ppo_says_so(tmp_path):
    RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=8, policy_kwargs=dict(lstm_hidden_size=8)).save(tmp_path / "ppo")
    message = r"RecurrentActorCriticPolicy: MetaRIMPPO needs a RIMActorCriticPolicy.*RecurrentPPO.load"
    with pytest.raises(ValueError, match=message):
        MetaRIMPPO.load(tmp_path / "ppo")


class NonFiniteEnv(gym.Env):
    """Returns ``bad`` in the observation or the reward at step ``at`` of env ``index``'s episode."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, index, bad_env, what, at, bad):
        self.index, self.bad_env, self.what, self.at, self.bad = index, bad_env, what, at, bad

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        broken = self.index == self.bad_env and self.t == self.at
        obs = np.array([0.0, self.bad if broken and self.what == "observation" else 0.0], np.float32)
        return obs, self.bad if broken and self.what == "reward" else 1.0, False, self.t >= 20, {}


@pytest.mark.parametrize("what, bad", [("observation", NAN), ("reward", INF)])
def test_vec_check_nan_stops_training_at_the_first_nan_or_inf(what, bad):
    envs = make_vec_env(NonFiniteEnv, n_envs=2, env_kwargs=dict(index=0, bad_env=0, what=what, at=3, bad=bad))
    model = MetaRIMPPO("MlpPolicy", VecCheckNan(envs, raise_exception=True), n_steps=8, batch_size=8, policy_kwargs=SMALL_CORE)
    with pytest.raises(ValueError, match=r"found (nan|inf)"):
        model.learn(16)
    assert model.num_timesteps <= 3 * envs.num_envs


def test_a_nan_loss_stops_training_and_leaves_the_last_good_checkpoint(tmp_path, cue_env):
    model = MetaRIMPPO("MlpPolicy", cue_env, n_steps=8, batch_size=8, n_epochs=1, policy_kwargs=SMALL_CORE, seed=0)
    checkpoints = CheckpointCallback(save_freq=8, save_path=str(tmp_path), name_prefix="ckpt")
    model.learn(32, callback=checkpoints)
    good = {name: param.detach().clone() for name, param in model.policy.named_parameters()}
    model.ent_coef = NAN  # as a diverging loss would
    with pytest.raises(NonFiniteLossError, match=r"fast phase's loss is nan .*last good ones"):
        model.learn(32, callback=checkpoints, reset_num_timesteps=False)
    assert all(param.equal(good[name]) for name, param in model.policy.named_parameters())
    latest = max(tmp_path.glob("ckpt_*_steps.zip"), key=lambda path: int(path.stem.split("_")[-2]))
    loaded = MetaRIMPPO.load(latest)
    assert all(param.isfinite().all() for param in loaded.policy.parameters())
