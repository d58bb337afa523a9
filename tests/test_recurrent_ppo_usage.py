"""
sb3-contrib's own RecurrentPPO usage (its tests/test_lstm.py: Box, Dict and image observations, shared_lstm,
enable_critic_lstm=False, gSDE, lstm_hidden_size / lstm_kwargs / n_lstm_layers) run against our algorithms with
only the class and the policy names changed; RecurrentPPO itself runs too, so a case that fails for us alone is
ours. Every core but MetODS takes every case (a RIM any width, stacked by n_lstm_layers, lstm_kwargs' dropout
between its layers); MetODS, one layer, must refuse n_lstm_layers=2 and lstm_kwargs with an error naming the
argument, not a stack trace. Where RecurrentPPO raises an AssertionError, so do we.
"""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

from sb3_metarim import MetaRIMPPO
from sb3_metarim.common.validation import PolicyArgumentError
from sb3_metarim.cores.rim import RIM, RIM_SLOW_PARAMETERS
from sb3_metarim.meta_rim_ppo.variants import GRUPPO, META_LSTM_SLOW_PARAMETERS, MetaLSTMPPO, MetODSPPO

POLICY_NAMES = {"MlpLstmPolicy": "MlpPolicy", "CnnLstmPolicy": "CnnPolicy", "MultiInputLstmPolicy": "MultiInputPolicy"}
# RecurrentPPO (the reference), MetaRIMPPO (a RIM), MetaLSTMPPO (an nn.LSTM, fast and slow), GRUPPO, MetODSPPO.
ALGOS = [RecurrentPPO, MetaRIMPPO, MetaLSTMPPO, GRUPPO, MetODSPPO]
LSTM_ONLY = ("n_lstm_layers", "lstm_kwargs")


def policy_name(algo: type, name: str) -> str:
    return name if algo is RecurrentPPO else POLICY_NAMES[name]


def make_model(algo: type, name: str, env, policy_kwargs: dict, **kwargs):
    """The model, or the error MetODS, one layer, must raise for an LSTM-only argument (then None)."""
    refused = [key for key in LSTM_ONLY if key in policy_kwargs]
    if algo is MetODSPPO and refused:
        with pytest.raises(PolicyArgumentError, match="|".join(rf"{key}=" for key in refused)):
            algo(policy_name(algo, name), env, policy_kwargs=policy_kwargs, **kwargs)
        return None
    return algo(policy_name(algo, name), env, policy_kwargs=policy_kwargs, **kwargs)


class ToDictWrapper(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = spaces.Dict({"obs": self.env.observation_space})

    def reset(self, **kwargs):
        return {"obs": self.env.reset(**kwargs)[0]}, {}

    def step(self, action):
        obs, reward, done, truncated, infos = self.env.step(action)
        return {"obs": obs}, reward, done, truncated, infos


class MultiBoxActionEnv(gym.Env):
    """A check_env-clean env with a 3-dimensional Box action: reward for matching the observation."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.target = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.target, {}

    def step(self, action):
        self.t += 1
        reward = -float(np.abs(np.clip(action, -1, 1) - self.target).sum())
        self.target = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.target, reward, False, self.t >= 20, {}


COMMON_KWARGS = [
    {},
    dict(shared_lstm=True, enable_critic_lstm=False),
    dict(enable_critic_lstm=True, lstm_hidden_size=4, lstm_kwargs=dict(dropout=0.5), n_lstm_layers=2),
    dict(enable_critic_lstm=False, lstm_hidden_size=4, lstm_kwargs=dict(dropout=0.5), n_lstm_layers=2),
]


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
@pytest.mark.parametrize(
    "policy_kwargs",
    [
        *COMMON_KWARGS,
        {"share_features_extractor": False},
        dict(enable_critic_lstm=False, lstm_hidden_size=4, share_features_extractor=False),
    ],
)
def test_cnn(algo, policy_kwargs):
    model = make_model(
        algo,
        "CnnLstmPolicy",
        FakeImageEnv(screen_height=40, screen_width=40, n_channels=3),
        dict(**policy_kwargs, features_extractor_kwargs=dict(features_dim=32)),
        n_steps=16,
        seed=0,
        n_epochs=2,
    )
    if model is not None:
        model.learn(total_timesteps=32)


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
@pytest.mark.parametrize("policy_kwargs", COMMON_KWARGS)
def test_policy_kwargs(algo, policy_kwargs):
    model = make_model(algo, "MlpLstmPolicy", "CartPole-v1", policy_kwargs, n_steps=16, seed=0)
    if model is not None:
        model.learn(total_timesteps=32)


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
def test_check(algo):
    # sb3-contrib's own checks: the same AssertionError for RecurrentPPO and ours.
    for policy_kwargs in (
        dict(shared_lstm=True, enable_critic_lstm=True),
        dict(shared_lstm=True, enable_critic_lstm=False, share_features_extractor=False),
    ):
        with pytest.raises(AssertionError, match="LSTM"):
            algo(policy_name(algo, "MlpLstmPolicy"), "CartPole-v1", n_steps=16, seed=0, policy_kwargs=policy_kwargs)


class ActionSpaceEnv(gym.Env):
    """An env with a given action space, for the checks SB3 makes of it."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)

    def __init__(self, action_space: spaces.Space) -> None:
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


# Arguments RecurrentPPO refuses with an AssertionError (sb3-contrib's policy and algorithm, SB3's base class), alone
# and with arguments that our cores check before sb3-contrib's policy asserts.
SHARED_AND_CRITIC = dict(shared_lstm=True, enable_critic_lstm=True)
ASSERTED = {
    "shared_lstm_with_critic_lstm": ("CartPole-v1", dict(policy_kwargs=SHARED_AND_CRITIC)),
    "shared_lstm_without_shared_extractor": (
        "CartPole-v1",
        dict(policy_kwargs=dict(shared_lstm=True, enable_critic_lstm=False, share_features_extractor=False)),
    ),
    "narrow_stacked": (
        "CartPole-v1",
        dict(policy_kwargs=dict(SHARED_AND_CRITIC, lstm_hidden_size=3, n_lstm_layers=2, lstm_kwargs=dict(dropout=0.5))),
    ),
    "lstm_kwargs_bias": ("CartPole-v1", dict(policy_kwargs=dict(SHARED_AND_CRITIC, lstm_kwargs=dict(bias=False)))),
    "clip_range_vf": ("CartPole-v1", dict(clip_range_vf=-0.1)),
    "squash_output_without_sde": ("Pendulum-v1", dict(policy_kwargs=dict(squash_output=True))),
    "tuple_actions": (ActionSpaceEnv(spaces.Tuple([spaces.Discrete(2)] * 2)), {}),
    "unbounded_box_actions": (ActionSpaceEnv(spaces.Box(-np.inf, np.inf, (2,), np.float32)), {}),
}


@pytest.mark.parametrize("case", ASSERTED)
def test_what_recurrent_ppo_asserts_is_an_assertion_error_for_every_algorithm(case):
    """Code written for RecurrentPPO that catches its AssertionError catches ours; our own errors among them (a core's
    check that runs before sb3-contrib's asserts) are ValueErrors too, with our message."""
    env, kwargs = ASSERTED[case]
    for algo in ALGOS:
        with pytest.raises(AssertionError) as raised:
            algo(policy_name(algo, "MlpLstmPolicy"), env, n_steps=16, **kwargs)
        if type(raised.value) is not AssertionError:
            assert isinstance(raised.value, PolicyArgumentError), (algo.__name__, raised.value)


def test_policy_argument_errors_are_caught_as_value_and_assertion_errors():
    assert issubclass(PolicyArgumentError, ValueError) and issubclass(PolicyArgumentError, AssertionError)
    cases = [
        (MetODSPPO, dict(n_lstm_layers=2), r"n_lstm_layers=2: a 'metods' core has exactly 1 layer"),
        (MetODSPPO, dict(lstm_hidden_size=3), r"num_neurons=3: must be an integer in 4..256"),
        (MetaRIMPPO, dict(lstm_kwargs=dict(bias=False)), r"lstm_kwargs=\{'bias': False\}: bias not taken by"),
        (
            MetaRIMPPO,
            dict(lstm_hidden_size=5, num_units=6, unit_size=16),
            r"lstm_hidden_size=5 with num_units=6, unit_size=16",
        ),
    ]
    for algo, policy_kwargs, message in cases:
        for caught in (ValueError, AssertionError):
            with pytest.raises(caught, match=message):
                algo("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs)


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_run(algo, env):
    algo(policy_name(algo, "MlpLstmPolicy"), env, n_steps=16, seed=0).learn(total_timesteps=32)


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
def test_run_sde(algo):
    model = algo(
        policy_name(algo, "MlpLstmPolicy"),
        "Pendulum-v1",
        n_steps=16,
        seed=0,
        sde_sample_freq=4,
        use_sde=True,
        clip_range_vf=0.1,
    )
    model.learn(total_timesteps=64)


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
@pytest.mark.parametrize("policy_kwargs", COMMON_KWARGS)
def test_dict_obs(algo, policy_kwargs):
    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ToDictWrapper)
    model = make_model(algo, "MultiInputLstmPolicy", env, policy_kwargs, n_steps=32)
    if model is not None:
        model.learn(64)
        evaluate_policy(model, env, n_eval_episodes=2, warn=False)


@pytest.mark.parametrize("algo", ALGOS, ids=lambda algo: algo.__name__)
@pytest.mark.parametrize("use_sde", [False, True])
def test_multi_dimensional_box_actions(algo, use_sde):
    check_env(MultiBoxActionEnv())
    model = algo(policy_name(algo, "MlpLstmPolicy"), MultiBoxActionEnv(), n_steps=16, seed=0, use_sde=use_sde)
    model.learn(32)
    action, _ = model.predict(MultiBoxActionEnv().reset(seed=0)[0])
    assert action.shape == (3,)


def rim_widths(**policy_kwargs) -> tuple[int, int, int]:
    """:return: the RIM's ``num_units``, ``unit_size`` and ``dense_size`` with these ``policy_kwargs``."""
    config = MetaRIMPPO("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs).policy.core_config
    return config.num_units, config.unit_size, config.dense_size


def test_lstm_hidden_size_sets_the_width():
    env = "CartPole-v1"
    rim = MetaRIMPPO("MlpPolicy", env, policy_kwargs=dict(lstm_hidden_size=64, num_units=4, top_k=2)).policy
    assert isinstance(rim.lstm_actor, RIM) and (rim.core_config.num_units, rim.core_config.unit_size) == (4, 8)
    assert rim.lstm_actor.output_size == 64 and rim.lstm_actor.hidden_size == 64 + 4  # + the last activity
    assert rim.lstm_actor.dense.hidden_size == 32  # half of the width beside the modules
    lstm = MetaRIMPPO("MlpPolicy", env, policy_kwargs=dict(recurrent_core="lstm", lstm_hidden_size=50, n_lstm_layers=2))
    assert isinstance(lstm.policy.lstm_actor, nn.LSTM) and lstm.policy.lstm_actor.hidden_size == 50
    assert lstm.policy.lstm_actor.num_layers == 2
    metods = MetODSPPO("MlpPolicy", env, policy_kwargs=dict(lstm_hidden_size=20)).policy
    assert metods.core_config.num_neurons == 20
    with pytest.raises(ValueError, match=r"lstm_hidden_size=20 and num_neurons=16"):
        MetODSPPO("MlpPolicy", env, policy_kwargs=dict(lstm_hidden_size=20, num_neurons=16))


def test_lstm_hidden_size_splits_between_the_modules_and_the_dense_lstm():
    """The RIM's width is num_units * unit_size + dense_size: given one of the two, the other takes the rest; given
    neither, the modules take half (192: the defaults' 6 x 16 + 96); dense_size=0 gives it all to the modules; 6
    modules unless fewer must do (RIMConfig.options_for_width)."""
    assert rim_widths(lstm_hidden_size=192) == (6, 16, 96)
    assert rim_widths(lstm_hidden_size=64) == (6, 5, 34)
    assert rim_widths(lstm_hidden_size=192, dense_size=0) == (6, 32, 0)
    assert rim_widths(lstm_hidden_size=192, unit_size=24) == (6, 24, 48)
    assert rim_widths(lstm_hidden_size=64, dense_size=16) == (6, 8, 16)
    assert rim_widths(lstm_hidden_size=64, unit_size=8, dense_size=16) == (6, 8, 16)
    # Fewer modules where 6 cannot fill the width as the options given ask.
    assert rim_widths(lstm_hidden_size=64, dense_size=0) == (4, 16, 0)
    assert rim_widths(lstm_hidden_size=64, dense_size=20) == (4, 11, 20)
    assert rim_widths(lstm_hidden_size=64, unit_size=16) == (4, 16, 0)
    assert rim_widths(lstm_hidden_size=40, unit_size=8, dense_size=16) == (3, 8, 16)
    assert rim_widths(lstm_hidden_size=8) == (6, 1, 2)
    assert rim_widths(lstm_hidden_size=8, num_units=6) == (6, 1, 2)
    cases = [
        (dict(lstm_hidden_size=64, dense_size=70), r"dense_size=70 with lstm_hidden_size=64: must be less than it"),
        (dict(lstm_hidden_size=64, num_units=4, unit_size=8, dense_size=16), r"lstm_hidden_size=64 and num_units=4"),
        (dict(lstm_hidden_size=64, num_units=6, dense_size=0), r"lstm_hidden_size - dense_size = 64 is not divisible by"),
        (dict(lstm_hidden_size=64, dense_size=-1), r"dense_size=-1: must be an integer >= 0"),
        # What the user fixed cannot hold the width: the error names it.
        (
            dict(lstm_hidden_size=5, num_units=6, unit_size=16),
            r"lstm_hidden_size=5 with num_units=6, unit_size=16: the modules alone are num_units \* unit_size = 96 wide",
        ),
        (dict(lstm_hidden_size=5, num_units=6), r"lstm_hidden_size=5 with num_units=6: too narrow .* num_units <= 5"),
        (dict(lstm_hidden_size=5, unit_size=8), r"unit_size=8 with lstm_hidden_size=5: wider than the modules may be"),
        (dict(lstm_hidden_size=64, unit_size=5, dense_size=10), r"unit_size=5 with lstm_hidden_size - dense_size = 54: not a"),
        (dict(lstm_hidden_size=3, top_k=4), r"top_k=4 with lstm_hidden_size=3: the width holds num_units=3 modules"),
    ]
    for policy_kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            rim_widths(**policy_kwargs)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 11])
def test_any_width_builds_and_learns(width):
    """A width alone is always a RIM, as narrow as nn.LSTM's: fewer, 1-wide modules and no dense LSTM below 6."""
    model = MetaRIMPPO(
        "MlpPolicy",
        "CartPole-v1",
        n_steps=8,
        batch_size=8,
        n_epochs=1,
        slow_interval=1,
        seed=0,
        policy_kwargs=dict(lstm_hidden_size=width),
    )
    config = model.policy.core_config
    assert config.output_size == width and model.policy.lstm_actor.output_size == width
    assert config.num_units == min(6, width) and 1 <= config.top_k <= config.num_units
    assert model.policy.mlp_extractor.policy_net[0].in_features == width
    model.learn(16)


def test_lstm_hidden_size_survives_save_and_load(tmp_path):
    model = MetaRIMPPO("MlpPolicy", "CartPole-v1", n_steps=16, policy_kwargs=dict(recurrent_core="lstm", lstm_hidden_size=12))
    model.save(tmp_path / "model")
    loaded = MetaRIMPPO.load(tmp_path / "model")
    assert loaded.policy.lstm_actor.hidden_size == 12


def test_an_lstm_core_with_default_arguments_trains_fast_and_slow_with_the_meta_lstm_split():
    model = MetaRIMPPO("MlpPolicy", "CartPole-v1", n_steps=16, slow_interval=1, policy_kwargs=dict(recurrent_core="lstm"))
    slow = {id(param) for group in model.slow_optimizer.param_groups for param in group["params"]}
    slow_names = {name for name, param in model.policy.named_parameters() if id(param) in slow}
    assert slow_names and all(re.search("value_net|lstm_critic", name) for name in slow_names)
    assert model.slow_parameters == list(META_LSTM_SLOW_PARAMETERS)
    before = {name: param.detach().clone() for name, param in model.policy.named_parameters()}
    model.learn(32)
    changed = {name for name, param in model.policy.named_parameters() if not param.equal(before[name])}
    assert changed & slow_names and changed - slow_names  # both timescales trained


def test_the_rim_default_slow_set_is_unchanged():
    model = MetaRIMPPO("MlpPolicy", "CartPole-v1", n_steps=16)
    assert model.slow_parameters == list(RIM_SLOW_PARAMETERS) == ["input_attention", "communication_attention"]
