"""The "gru" core (GRUPPO): nn.GRU's own computation behind nn.LSTM's interface, stacked and configured as
RecurrentPPO's LSTM, saved and loaded, trained on one timescale or fast and slow."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_metarim import GRUPPO, MetaRIMPPO
from sb3_metarim.cores import GRU, default_slow_parameters, make_core
from sb3_metarim.meta_rim_ppo.variants import META_LSTM_SLOW_PARAMETERS

SMALL = dict(n_steps=16, batch_size=16, n_epochs=1, seed=0)


def test_the_core_is_nn_gru_with_the_cell_state_passed_through():
    core = make_core("gru", input_size=3, num_units=2, unit_size=4, num_layers=2, dropout=0.0)
    assert isinstance(core, GRU) and (core.hidden_size, core.num_layers) == (8, 2)
    features, hidden, cell = th.randn(5, 2, 3), th.randn(2, 2, 8), th.randn(2, 2, 8)
    output, (new_hidden, new_cell) = core(features, (hidden, cell))
    expected, expected_hidden = th.nn.GRU.forward(core, features, hidden)
    assert th.equal(output, expected) and th.equal(new_hidden, expected_hidden) and new_cell is cell


def test_width_layers_and_lstm_kwargs_reach_the_gru():
    model = GRUPPO(
        "MlpPolicy",
        "CartPole-v1",
        policy_kwargs=dict(lstm_hidden_size=24, n_lstm_layers=3, lstm_kwargs=dict(dropout=0.25, bias=False)),
        **SMALL,
    )
    for core in (model.policy.lstm_actor, model.policy.lstm_critic):
        assert (core.hidden_size, core.num_layers, core.dropout, core.bias) == (24, 3, 0.25, False)
    assert model.policy.lstm_hidden_state_shape == (3, 1, 24)
    model.learn(32)
    assert model._last_lstm_states.pi[0].shape == (3, 1, 24)


@pytest.mark.parametrize("lstm_kwargs", [dict(batch_first=True), dict(bidirectional=True), dict(proj_size=2)])
def test_lstm_kwargs_that_change_the_layout_are_refused_by_name(lstm_kwargs):
    (name,) = lstm_kwargs
    with pytest.raises(ValueError, match=rf"lstm_kwargs=.*{name} not taken by recurrent_core='gru'"):
        GRUPPO("MlpPolicy", "CartPole-v1", policy_kwargs=dict(lstm_kwargs=lstm_kwargs), **SMALL)


def test_only_a_gru_core():
    with pytest.raises(ValueError, match=r"policy_kwargs\['recurrent_core'\]='rim': gru_ppo has a GRU core"):
        GRUPPO("MlpPolicy", "CartPole-v1", policy_kwargs=dict(recurrent_core="rim"), **SMALL)


def test_save_load_gives_the_same_actions_from_the_same_states(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GRUPPO("MlpPolicy", env, policy_kwargs=dict(lstm_hidden_size=16), **SMALL)
    model.learn(64)
    model.save(tmp_path / "gru")
    loaded = GRUPPO.load(tmp_path / "gru", env=env)
    assert loaded.policy.lstm_actor.hidden_size == 16
    observations = np.random.default_rng(0).normal(size=(20, 2, 4)).astype(np.float32)
    states = {id(model): None, id(loaded): None}
    for step, observation in enumerate(observations):
        starts = np.array([step == 0, step % 7 == 0])
        actions = []
        for algorithm in (model, loaded):
            action, states[id(algorithm)] = algorithm.predict(
                observation, state=states[id(algorithm)], episode_start=starts, deterministic=True
            )
            actions.append(action)
        np.testing.assert_array_equal(*actions)
        np.testing.assert_array_equal(*(states[id(algorithm)][0] for algorithm in (model, loaded)))


def test_fast_and_slow_the_value_function_is_slow():
    model = GRUPPO("MlpPolicy", "CartPole-v1", meta=True, **SMALL)
    assert default_slow_parameters("gru") == META_LSTM_SLOW_PARAMETERS
    slow = {name for name, _ in model.policy.named_parameters() if name.startswith(("value_net", "lstm_critic"))}
    before = {name: parameter.detach().clone() for name, parameter in model.policy.named_parameters()}
    model.learn(16)  # one rollout: the fast phase only (slow_interval 2)
    moved = {name for name, parameter in model.policy.named_parameters() if not th.equal(parameter, before[name])}
    assert moved and not moved & slow


def test_metarimppo_takes_the_gru_core_by_name():
    model = MetaRIMPPO("MlpPolicy", "CartPole-v1", meta=False, policy_kwargs=dict(recurrent_core="gru"), **SMALL)
    assert isinstance(model.policy.lstm_actor, GRU) and model.policy.lstm_actor.hidden_size == 192
