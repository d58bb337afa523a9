"""
Bad input is a clear error, nothing silently wrong: constructor arguments, policy kwargs and spaces (a property
test), truncated, corrupt and foreign model zips, NaN or infinite observations and rewards, a loss that turns NaN.
"""

import math
import os
import re
import zipfile

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from torch import nn

from sb3_metarim import MetaRIMPPO
from sb3_metarim.meta_rim_ppo import NonFiniteLossError
from sb3_metarim.validation import FINITE_CHECK_ATTR, VecCheckFinite, innermost_vec_env

from .conftest import SMALL_CORE

NAN, INF = float("nan"), float("inf")

# Each argument: (valid values, invalid values). Invalid ones must raise a ValueError naming the argument.
ARGUMENTS = {
    "learning_rate": (st.floats(1e-5, 1e-2), st.sampled_from([0.0, -1e-3, NAN, INF, "fast"])),
    "n_steps": (st.integers(2, 16), st.sampled_from([0, -4, 2.5, "8", True])),
    "batch_size": (st.sampled_from([2, 8, 16]), st.sampled_from([0, 1, -8, 4.0])),
    "n_epochs": (st.integers(1, 3), st.sampled_from([0, -1, 1.5])),
    "gamma": (st.floats(0.0, 1.0), st.sampled_from([-0.1, 1.5, NAN, "0.9"])),
    "gae_lambda": (st.floats(0.0, 1.0), st.sampled_from([-1.0, 2.0, NAN])),
    "clip_range": (st.floats(0.05, 0.5), st.sampled_from([0.0, -0.2, NAN, None])),
    "clip_range_vf": (st.one_of(st.none(), st.floats(0.05, 1.0)), st.sampled_from([0.0, -1.0, INF])),
    "ent_coef": (st.floats(0.0, 0.1), st.sampled_from([NAN, INF, "auto"])),
    "vf_coef": (st.floats(0.1, 1.0), st.sampled_from([NAN, -INF])),
    "max_grad_norm": (st.floats(0.1, 5.0), st.sampled_from([0.0, -1.0, NAN])),
    "target_kl": (st.one_of(st.none(), st.floats(0.001, 0.1)), st.sampled_from([0.0, -0.01, NAN])),
    "sde_sample_freq": (st.sampled_from([-1, 1, 4]), st.sampled_from([0, -2, 1.5])),
    "stats_window_size": (st.integers(1, 100), st.sampled_from([0, -1])),
    "fast_span": (st.integers(1, 16), st.sampled_from([0, -1, 2.0])),
    "slow_interval": (st.integers(1, 4), st.sampled_from([0, "2"])),
    "slow_n_epochs": (st.integers(1, 2), st.sampled_from([0, -3])),
    "slow_learning_rate": (st.floats(1e-5, 1e-3), st.sampled_from([0.0, -1e-4, "slow"])),
    "slow_max_kl": (st.one_of(st.none(), st.floats(0.01, 1.0)), st.sampled_from([0.0, -0.1, NAN, "0.1"])),
    "slow_parameters": (st.sampled_from([None, ["input_attention"]]), st.sampled_from([[], "attention", ["("], ["nothing"]])),
    "check_nan": (st.booleans(), st.sampled_from([1, "yes"])),
}
POLICY_ARGUMENTS = {
    "num_units": (st.integers(2, 4), st.sampled_from([0, -1, 2.0])),
    "unit_size": (st.integers(1, 8), st.sampled_from([0, -8])),
    "cell": (st.sampled_from(["lstm", "gru"]), st.sampled_from(["rnn", 3])),
    "dropout": (st.sampled_from([0.0, 0.1]), st.sampled_from([1.0, -0.1, "none"])),
    "net_arch": (
        st.sampled_from([None, [], [8], [8, 8], dict(pi=[8], vf=[4])]),
        st.sampled_from([[0], [-8], ["64"], dict(pi=[8], q=[8]), 64]),
    ),
    "activation_fn": (st.sampled_from([nn.Tanh, nn.ReLU]), st.sampled_from(["relu", nn.ReLU()])),
    "ortho_init": (st.booleans(), st.sampled_from([0, "no"])),
    "log_std_init": (st.floats(-2.0, 1.0), st.sampled_from([NAN, "0"])),
    "enable_critic_lstm": (st.booleans(), st.sampled_from([None, 1])),
    "n_lstm_layers": (st.just(1), st.sampled_from([0, 2])),
    "lstm_kwargs": (st.sampled_from([None, {}]), st.sampled_from([dict(dropout=0.1), "dropout"])),
    "optimizer_kwargs": (st.sampled_from([None, dict(eps=1e-5)]), st.sampled_from([1e-5, "adam"])),
    "unknown_key": (st.nothing(), st.just(1)),
}
BOX = st.builds(lambda n: gym.spaces.Box(-1.0, 1.0, (n,), np.float32), st.integers(1, 4))
FLAT_SPACES = st.one_of(
    BOX,
    st.builds(gym.spaces.Discrete, st.integers(2, 5)),
    st.builds(gym.spaces.MultiDiscrete, st.lists(st.integers(2, 4), min_size=1, max_size=3)),
    st.builds(gym.spaces.MultiBinary, st.integers(1, 4)),
)
OBSERVATION_SPACES = (
    st.one_of(FLAT_SPACES, st.builds(lambda a, b: gym.spaces.Dict({"a": a, "b": b}), FLAT_SPACES, FLAT_SPACES)),
    st.sampled_from(
        [
            gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2))),
            gym.spaces.Dict({"text": gym.spaces.Text(4), "b": gym.spaces.Discrete(2)}),
        ]
    ),
)
ACTION_SPACES = (
    st.one_of(FLAT_SPACES),
    st.sampled_from(
        [gym.spaces.Tuple((gym.spaces.Discrete(2),)), gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)],
    ),
)


class SpaceEnv(gym.Env):
    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def draw(data, table, broken):
    """Draw values for some of the arguments of ``table``, invalid ones for ``broken``; :return: values, invalid names."""
    values, invalid = {}, set()
    for name, (good, bad) in table.items():
        if name in broken:
            values[name] = data.draw(bad, label=name)
            invalid.add(name)
        elif name != "unknown_key" and data.draw(st.booleans(), label=f"{name} given"):
            values[name] = data.draw(good, label=name)
    return values, invalid


BREAKABLE = [*ARGUMENTS, *POLICY_ARGUMENTS, "observation_space", "action_space", "policy"]


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
    observation_space = data.draw(OBSERVATION_SPACES["observation_space" in broken], label="observation_space")
    action_space = data.draw(ACTION_SPACES["action_space" in broken], label="action_space")
    invalid |= {name for name in ("observation_space", "action_space") if name in broken}
    # Combinations each valid alone but not together, and the argument the error must name.
    num_units = policy_kwargs.get("num_units", SMALL_CORE["num_units"])
    top_k = data.draw(st.integers(1, 4) if data.draw(st.integers(0, 9), label="top_k above?") else st.just(5), label="top_k")
    policy_kwargs = {**SMALL_CORE, **policy_kwargs, "top_k": top_k}
    if isinstance(num_units, int) and top_k > num_units and "num_units" not in invalid:
        invalid.add("top_k")
    if data.draw(st.integers(0, 5), label="shared_lstm") == 0:
        policy_kwargs["shared_lstm"] = True
        if policy_kwargs.get("enable_critic_lstm", True):
            invalid.add("shared_lstm")
    if data.draw(st.integers(0, 4), label="lstm_hidden_size") == 0 and isinstance(num_units, int) and num_units > 0:
        width = data.draw(st.integers(2, 24), label="width")
        policy_kwargs.pop("unit_size", None)
        policy_kwargs["lstm_hidden_size"] = width
        if width % num_units:
            invalid.add("lstm_hidden_size")
    use_sde = data.draw(st.integers(0, 4), label="use_sde") == 0
    if use_sde and not isinstance(action_space, gym.spaces.Box):
        invalid.add("use_sde")
    if isinstance(arguments.get("batch_size"), int) and arguments.get("batch_size") == 1:
        invalid.add("batch_size")
    policy = "MultiInputPolicy" if isinstance(observation_space, gym.spaces.Dict) else "MlpPolicy"
    if "policy" in broken:
        policy = {"MlpPolicy": "CnnPolicy", "MultiInputPolicy": "MlpPolicy"}[policy]
        invalid.add("policy")

    def build():
        return MetaRIMPPO(
            policy,
            SpaceEnv(observation_space, action_space),
            use_sde=use_sde,
            policy_kwargs=policy_kwargs,
            device="cpu",
            **arguments,
        )

    event("valid: constructs" if not invalid else f"{len(invalid)} invalid")
    if not invalid:
        build()
        return
    with pytest.raises(ValueError) as error:  # any other exception fails the test
        build()
    message = str(error.value)
    assert any(re.search(rf"\b{re.escape(name)}\b", message) for name in invalid), (invalid, message)


def saved_model(tmp_path, cue_env):
    model = MetaRIMPPO("MlpPolicy", cue_env, n_steps=8, batch_size=8, policy_kwargs=SMALL_CORE)
    model.save(tmp_path / "model.zip")
    return tmp_path / "model.zip"


def test_truncated_zip_names_the_file_and_the_fault(tmp_path, cue_env):
    path = saved_model(tmp_path, cue_env)
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: .*truncated"):
            MetaRIMPPO.load(path)


def test_corrupt_zip_names_the_file_and_the_entry(tmp_path, cue_env):
    path = saved_model(tmp_path, cue_env)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("policy.pth")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: .*(corrupt|truncated).*"):
        MetaRIMPPO.load(str(path)[: -len(".zip")])  # SB3 appends .zip


def test_a_zip_saved_by_recurrent_ppo_says_so(tmp_path):
    RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=8, policy_kwargs=dict(lstm_hidden_size=8)).save(tmp_path / "ppo")
    message = r"ppo.zip: saved by another algorithm: .*RecurrentActorCriticPolicy.*RecurrentPPO.load"
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


@pytest.mark.parametrize("what, bad", [("observation", NAN), ("reward", INF), ("reward", NAN)])
def test_nan_or_inf_from_the_env_names_the_env_and_the_step(what, bad):
    envs = make_vec_env(NonFiniteEnv, n_envs=3, env_kwargs=dict(index=0, bad_env=-1, what=what, at=7, bad=bad))
    for index, monitor in enumerate(envs.envs):
        monitor.env.index = index
        monitor.env.bad_env = 1
    model = MetaRIMPPO("MlpPolicy", envs, n_steps=8, batch_size=8, policy_kwargs=SMALL_CORE)
    kind = "NaN" if math.isnan(bad) else "an infinity"
    with pytest.raises(ValueError, match=rf"env 1 returned {kind} in its {what}.* at step 7 of its episode"):
        model.learn(16)
    # Opt out: as RecurrentPPO, no check.
    assert hasattr(innermost_vec_env(model.env), FINITE_CHECK_ATTR) and model.env is envs  # the env keeps its type
    fresh = make_vec_env(NonFiniteEnv, n_envs=2, env_kwargs=dict(index=0, bad_env=0, what=what, at=2, bad=bad))
    unchecked = MetaRIMPPO("MlpPolicy", fresh, n_steps=8, batch_size=8, check_nan=False, policy_kwargs=SMALL_CORE)
    assert not hasattr(innermost_vec_env(unchecked.env), FINITE_CHECK_ATTR)
    wrapped = VecCheckFinite(fresh)  # the same check as a wrapper
    wrapped.reset()
    with pytest.raises(ValueError, match=rf"env 0 returned {kind} in its {what}.* at step 2 of its episode"):
        for _ in range(3):
            wrapped.step(np.zeros(2, dtype=np.int64))


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
