"""sb3_metarim.benchmark.throughput: the stage timers of ``--case budget`` and the models the cases compare."""

import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecNormalize

from sb3_metarim import MetaRIMPPO
from sb3_metarim.benchmark.throughput import StageTimer, make_cartpole_novel_model, make_gotolocal_model
from sb3_metarim.cores.rim import RIM
from sb3_metarim.meta_rim_ppo import policies

from .conftest import SMALL_CORE

STAGES = ("total", "collection", "env steps", "training", "backward", "optimizer steps", "features extractor forward")


class LinearExtractor(BaseFeaturesExtractor):
    """A features extractor with parameters, so that the backward pass reaches it."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, 8)
        self.linear = th.nn.Linear(observation_space.shape[0], 8)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


def tiny_model(algo: str):
    common = dict(n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    extractor = dict(features_extractor_class=LinearExtractor)
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", "CartPole-v1", policy_kwargs=dict(extractor, lstm_hidden_size=8), **common)
    policy_kwargs = dict(extractor, **SMALL_CORE)
    return MetaRIMPPO("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs, fast_span=4, slow_interval=1, **common)


@pytest.mark.parametrize("algo", ["metarim", "lstm"])
def test_stage_timer_times_every_stage_and_removes_its_timers(algo):
    model = tiny_model(algo)

    def timed_callables() -> tuple:
        extractor, optimizer = model.policy.features_extractor, model.policy.optimizer
        return (
            th.Tensor.backward,
            RIM.forward,
            policies.run_rims,
            extractor.forward,
            model.env.step_wait,
            model.collect_rollouts,
            model.train,
            optimizer.step,
            vars(extractor).get("forward"),
        )

    originals = timed_callables()
    with StageTimer(model) as timer:
        model.learn(32)
        timer.add("total", 1.0)
    seconds = timer.seconds
    assert all(seconds.get(stage, 0.0) > 0.0 for stage in STAGES), seconds
    assert seconds["recurrent cores forward"] > 0.0
    assert 0.0 < seconds["features extractor backward"] <= seconds["backward"] < seconds["training"]
    assert seconds["env steps"] < seconds["collection"]
    assert timed_callables() == originals
    start = th.zeros(1, requires_grad=True)
    (start * 2).sum().backward()  # the plain backward again
    assert start.grad.item() == 2.0


@pytest.mark.parametrize(("num_units", "unit_size", "dense_size"), [(4, 16, 64), (6, 16, 96), (8, 16, 128)])
def test_gotolocal_default_core_is_as_wide_as_the_lstm(num_units, unit_size, dense_size):
    setting = dict(n_envs=2, vec_env="dummy", fast_span=20, num_units=num_units, seed=0, device="cpu")
    model = make_gotolocal_model("metarim", core="defaults", **setting)
    config = model.policy.lstm_actor.config
    assert (config.num_units, config.unit_size, config.dense_size) == (num_units, unit_size, dense_size)
    assert model.slow_max_kl == 0.05
    lstm = make_gotolocal_model("lstm", core="defaults", **setting)
    assert lstm.policy.lstm_actor.hidden_size == config.output_size
    paper = make_gotolocal_model("metarim", core="paper", **setting).policy.lstm_actor.config
    assert (paper.unit_size, paper.dense_size) == (32, 0)


def test_gotolocal_backward_setting_switches_every_rim_of_the_model():
    setting = dict(n_envs=2, vec_env="dummy", fast_span=20, num_units=6, core="defaults", seed=0, device="cpu")
    for backward, span in (("span", True), ("steps", False)):
        model = make_gotolocal_model("metarim", backward=backward, **setting)
        rims = [module for module in model.policy.modules() if isinstance(module, RIM)]
        assert len(rims) == 2 and all(rim.span_backward is span for rim in rims)
    assert RIM.span_backward is True  # the class's default is left alone


def test_cartpole_novel_models_take_rl_zoo3s_tuned_settings():
    for algo, cls in (("metarim", MetaRIMPPO), ("lstm", RecurrentPPO)):
        model = make_cartpole_novel_model(algo)
        assert type(model) is cls and isinstance(model.env, VecNormalize) and model.n_envs == 8
        assert (model.n_steps, model.batch_size, model.n_epochs, model.gae_lambda, model.gamma) == (32, 256, 20, 0.8, 0.98)
        assert model.learning_rate(1.0) == pytest.approx(1e-3) and model.learning_rate(0.5) == pytest.approx(5e-4)
        assert model.policy.lstm_hidden_state_shape[-1] >= 64
