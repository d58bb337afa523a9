"""The core registry and RIMConfig: one home for the RIM's options, cores chosen by name, clear errors."""

import inspect

import pytest
import torch as th
from torch import nn

from sb3_metarim import MetaRIMPPO
from sb3_metarim.cores import CORE_CONFIGS, CORES, make_core, register_core
from sb3_metarim.cores.rim import RIM, RIMConfig
from sb3_metarim.meta_rim_ppo.policies import RIMActorCriticPolicy

from .conftest import SMALL_CORE


class GRUCore(nn.Module):
    """A third core for the test: ``nn.GRU`` with ``nn.LSTM``'s (h, c) interface (c carried unchanged)."""

    num_layers = 1

    def __init__(self, input_size: int, num_units: int, unit_size: int, **_: object) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, num_units * unit_size
        self.gru = nn.GRU(input_size, self.hidden_size)

    def forward(self, input: th.Tensor, state: tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        output, h = self.gru(input, state[0].contiguous())
        return output, (h, state[1])


@pytest.fixture
def gru_core():
    register_core("test_gru", GRUCore)
    yield "test_gru"
    CORES.pop("test_gru")
    CORE_CONFIGS.pop("test_gru")


def test_rim_config_is_the_one_home_of_the_options():
    config = RIMConfig(num_units=4, top_k=2, unit_size=8)
    assert RIMConfig(**config.as_dict()) == config and config.output_size == 32 + 96  # the default dense LSTM beside
    assert config.hidden_size == 32 + 96 + 4  # the state also carries the last activity (the default sticky_bonus)
    # The policy's signature lists the same options with the same defaults.
    parameters = inspect.signature(RIMActorCriticPolicy).parameters
    assert {name: parameters[name].default for name in RIMConfig.option_names()} == RIMConfig().as_dict()
    by_config, by_keywords = RIM(5, config), RIM(5, num_units=4, top_k=2, unit_size=8)
    assert by_config.config == by_keywords.config == config
    assert RIM.from_config(5, config).hidden_size == 132
    assert [name for name, _ in by_config.named_parameters()] == [name for name, _ in by_keywords.named_parameters()]
    with pytest.raises(TypeError, match="not both"):
        RIM(5, config, top_k=1)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(top_k=7), r"top_k=7: must be between 1 and num_units=6"),
        (dict(comm_key_size=0), r"comm_key_size=0: must be a positive integer"),
        (dict(cell="rnn"), r"cell='rnn': must be one of \('lstm', 'gru'\)"),
        (dict(dropout=-0.1), r"dropout=-0.1: must be in \[0, 1\)"),
    ],
)
def test_validate_names_the_option_the_value_and_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        RIMConfig(**options).validate()


def test_make_core_by_name():
    rim = make_core("rim", 5, **SMALL_CORE)
    assert isinstance(rim, RIM) and rim.config == RIMConfig(**SMALL_CORE)
    assert make_core("rim", 5, config=RIMConfig(**SMALL_CORE)).config == rim.config
    lstm = make_core("lstm", 5, hidden_size=16, num_layers=2, dropout=0.0)
    assert isinstance(lstm, nn.LSTM) and (lstm.hidden_size, lstm.num_layers) == (16, 2)
    with pytest.raises(
        ValueError, match=r"recurrent_core='transformer': unknown core; registered: 'gru', 'lstm', 'metods', 'rim'"
    ):
        make_core("transformer", 5)
    with pytest.raises(ValueError, match="registered already"):
        register_core("rim", make_core)


def test_policy_errors_on_lstm_arguments_a_core_cannot_take_and_on_unknown_cores(cue_env):
    with pytest.raises(ValueError, match=r"lstm_kwargs=\{'bias': False\}: bias not taken by recurrent_core='rim'"):
        MetaRIMPPO("MlpPolicy", cue_env, policy_kwargs=dict(SMALL_CORE, lstm_kwargs=dict(bias=False)))
    metods = dict(recurrent_core="metods", lstm_kwargs=dict(dropout=0.1))
    message = r"lstm_kwargs=\{'dropout': 0.1\}: nn.LSTM's arguments, unused by .*'metods'.* 'gru' or 'lstm' or 'rim'"
    with pytest.raises(ValueError, match=message):
        MetaRIMPPO("MlpPolicy", cue_env, meta=False, policy_kwargs=metods)
    with pytest.raises(ValueError, match=r"recurrent_core='transformer': unknown core; registered: .*'lstm', .*'rim'"):
        MetaRIMPPO("MlpPolicy", cue_env, policy_kwargs=dict(recurrent_core="transformer"))
    # An LSTM core takes them, and its own options (a width of num_units * unit_size, 6 x 32 by default)...
    lstm = dict(recurrent_core="lstm", num_units=2, unit_size=8, lstm_kwargs=dict(bias=False))
    model = MetaRIMPPO("MlpPolicy", cue_env, policy_kwargs=lstm, slow_parameters=["value_net"])
    assert isinstance(model.policy.lstm_actor, nn.LSTM) and model.policy.lstm_actor.bias is False
    assert model.policy.lstm_actor.hidden_size == 16
    assert MetaRIMPPO("MlpPolicy", cue_env, policy_kwargs=dict(recurrent_core="lstm")).policy.lstm_actor.hidden_size == 192
    # ... but a RIM option, which it would ignore, is an error, not silently dropped.
    for name, value in (("top_k", 4), ("dense_size", 16), ("selection", "straight_through"), ("cell", "gru")):
        with pytest.raises(ValueError, match=rf"{name}={value!r}: an option of recurrent_core 'rim', not of .*'lstm'"):
            MetaRIMPPO("MlpPolicy", cue_env, policy_kwargs=dict(lstm, **{name: value}), slow_parameters=["value_net"])


def test_a_registered_core_trains_and_saves(cue_env, gru_core, tmp_path):
    model = MetaRIMPPO(
        "MlpPolicy",
        cue_env,
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        slow_interval=1,
        slow_parameters=["value_net"],
        policy_kwargs=dict(recurrent_core=gru_core, num_units=2, unit_size=4),
        seed=0,
    )
    assert isinstance(model.policy.lstm_actor, GRUCore) and isinstance(model.policy.lstm_critic, GRUCore)
    model.learn(64)
    model.save(tmp_path / "model")
    loaded = MetaRIMPPO.load(tmp_path / "model", env=cue_env)
    assert isinstance(loaded.policy.lstm_actor, GRUCore) and loaded.policy.recurrent_core == gru_core


def test_saved_policy_keeps_the_constructor_names(cue_env):
    """Saved models store the core's options flat, under the names of today's policy_kwargs."""
    policy = MetaRIMPPO("MlpPolicy", cue_env, policy_kwargs=dict(SMALL_CORE)).policy
    data = policy._get_constructor_parameters()
    assert {"recurrent_core", *RIMConfig.option_names(), "lstm_kwargs", "n_lstm_layers"} <= set(data)
    assert {name: data[name] for name in RIMConfig.option_names()} == RIMConfig(**SMALL_CORE).as_dict()
