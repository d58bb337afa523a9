"""RIMs stacked as nn.LSTM stacks layers: n_lstm_layers and lstm_kwargs' dropout, the state, training and saving."""

import re

import numpy as np
import pytest
import torch as th

from sb3_metarim import MetaRIMPPO
from sb3_metarim.common.validation import PolicyArgumentError
from sb3_metarim.cores import make_core
from sb3_metarim.cores.rim import RIM, ModuleActivity

from .conftest import SMALL_CORE

SEQ, BATCH, OBS = 6, 3, 5


def make_stack(**kwargs) -> RIM:
    th.manual_seed(0)
    return RIM(OBS, **(SMALL_CORE | {"num_layers": 2, "dense_size": 4, "sticky_bonus": 0.3} | kwargs))


def random_states(rim: RIM) -> tuple[th.Tensor, th.Tensor]:
    shape = (rim.num_layers, BATCH, rim.hidden_size)
    return th.randn(shape), th.randn(shape)


def test_each_layer_reads_the_output_of_the_layer_below():
    rim = make_stack()
    bottom = RIM(OBS, rim.config)
    bottom.load_state_dict({name: value for name, value in rim.state_dict().items() if not name.startswith("upper_layers")})
    top = rim.upper_layers[0]
    assert top.input_size == rim.output_size and rim.layers == [rim, top]
    x, (h, c) = th.randn(SEQ, BATCH, OBS), random_states(rim)
    starts = th.zeros(SEQ, BATCH)
    starts[2, 0] = starts[4, 1] = 1.0
    output, (h_n, c_n) = rim(x, (h, c), starts)
    low, (low_h, low_c) = bottom(x, (h[:1], c[:1]), starts)
    high, (high_h, high_c) = top(low, (h[1:], c[1:]), starts)
    assert th.equal(output, high)
    assert th.equal(h_n, th.cat((low_h, high_h))) and th.equal(c_n, th.cat((low_c, high_c)))
    # Both layers' activity, layer by layer.
    assert th.equal(rim.last_active, th.cat((bottom.last_active, top.last_active), dim=-1))


def test_one_layer_keeps_its_parameter_names_and_results():
    """n_lstm_layers=1 is the RIM as it always was: the same parameters, the same state and output."""
    one = make_stack(num_layers=1)
    plain = make_stack(num_layers=1, layer_dropout=0.5)
    assert [name for name, _ in one.named_parameters()] == [name for name, _ in RIM(OBS, one.config).named_parameters()]
    assert not any(name.startswith("upper_layers") for name in one.state_dict())
    x, state = th.randn(SEQ, BATCH, OBS), random_states(one)
    plain.train()  # dropout between layers: none with one layer, even in training
    for got, expected in zip(plain(x, state)[1], one(x, state)[1], strict=True):
        assert th.equal(got, expected)


def test_dropout_between_layers_only_in_training():
    rim = make_stack(layer_dropout=0.5)
    reference = make_stack()  # the same weights (the same seed), no dropout
    x, state = th.randn(SEQ, BATCH, OBS), random_states(rim)
    rim.eval()
    output, (h, c) = rim(x, state)
    expected, (expected_h, expected_c) = reference(x, state)
    assert th.equal(output, expected) and th.equal(h, expected_h)
    rim.train()
    output, (h, c) = rim(x, state)
    # The first layer's own state is not dropped out (nn.LSTM drops what the next layer reads), the last layer's
    # output is not dropped out but reads a dropped-out input.
    assert th.equal(h[0], expected_h[0]) and th.equal(c[0], expected_c[0])
    assert not th.allclose(output, expected)


def test_make_core_checks_the_stack_arguments():
    assert make_core("rim", OBS, num_layers=3, **SMALL_CORE).num_layers == 3
    with pytest.raises(ValueError, match=r"num_layers=0: must be a positive integer"):
        make_core("rim", OBS, num_layers=0, **SMALL_CORE)
    with pytest.raises(ValueError, match=r"layer_dropout=1.5: must be a number in \[0, 1\]"):
        make_core("rim", OBS, num_layers=2, layer_dropout=1.5, **SMALL_CORE)
    rim = make_stack()
    with pytest.raises(RuntimeError, match=r"this RIM takes \(num_layers, batch, hidden_size\) = \(2, batch, 40\)"):
        rim(th.randn(SEQ, BATCH, OBS), (th.zeros(1, BATCH, rim.hidden_size), th.zeros(1, BATCH, rim.hidden_size)))


def make_model(env, **policy_kwargs) -> MetaRIMPPO:
    kwargs = dict(SMALL_CORE, n_lstm_layers=2, lstm_kwargs=dict(dropout=0.5)) | policy_kwargs
    return MetaRIMPPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, slow_interval=1, seed=0, policy_kwargs=kwargs)


def test_the_state_is_layers_by_batch_by_width(cue_env):
    model = make_model(cue_env)
    policy = model.policy
    width = policy.lstm_actor.hidden_size
    assert policy.lstm_hidden_state_shape == (2, 1, width)
    assert (policy.lstm_actor.num_layers, policy.lstm_critic.num_layers) == (2, 2)
    assert policy.lstm_actor.layer_dropout == 0.5 and policy.lstm_actor.config.dropout == 0.0  # the attention's
    assert model.rollout_buffer.hidden_states_pi.shape == (16, 2, cue_env.num_envs, width)
    _, state = model.predict(cue_env.reset(), episode_start=np.ones(cue_env.num_envs, dtype=bool))
    assert state[0].shape == state[1].shape == (2, cue_env.num_envs, width)


def test_a_stack_trains_fast_and_slow_and_logs_every_layer(cue_env):
    """Both layers' attention is in the slow set; the fast phase's spans start from stored 2-layer states."""
    model = make_model(cue_env)
    slow = {id(param) for group in model.slow_optimizer.param_groups for param in group["params"]}
    slow_names = {name for name, param in model.policy.named_parameters() if id(param) in slow}
    assert any(name.startswith("lstm_actor.upper_layers.0.input_attention") for name in slow_names)
    assert all(re.search("input_attention|communication_attention", name) for name in slow_names)
    before = {name: param.detach().clone() for name, param in model.policy.named_parameters()}
    model.learn(32)
    changed = {name for name, param in model.policy.named_parameters() if not param.equal(before[name])}
    assert any(name.startswith("lstm_actor.upper_layers.0.") for name in changed & slow_names)
    assert any(name.startswith("lstm_actor.upper_layers.0.") for name in changed - slow_names)
    logged = model.logger.name_to_value
    units = 2 * SMALL_CORE["num_units"]
    assert f"rim/active_rate_unit{units - 1}" in logged and f"rim/active_rate_unit{units}" not in logged


def test_module_activity_counts_every_layer():
    rim = make_stack()
    rim(th.randn(SEQ, BATCH, OBS), random_states(rim))
    activity = ModuleActivity()
    activity.add(rim, th.ones(SEQ * BATCH, dtype=th.bool))
    rates = activity.rates()
    top_k, num_units = SMALL_CORE["top_k"], SMALL_CORE["num_units"]
    assert len(rates) == 2 * num_units
    assert sum(rates[:num_units]) == pytest.approx(top_k) and sum(rates[num_units:]) == pytest.approx(top_k)


def test_a_saved_stack_loads_and_acts_the_same(cue_env, tmp_path):
    model = make_model(cue_env).learn(32)
    model.save(tmp_path / "model")
    loaded = MetaRIMPPO.load(tmp_path / "model", env=cue_env)
    assert loaded.policy.lstm_actor.num_layers == 2 and loaded.policy.lstm_actor.layer_dropout == 0.5
    observation = cue_env.reset()
    starts = np.ones(cue_env.num_envs, dtype=bool)
    states = {"saved": None, "loaded": None}
    for _ in range(8):
        actions = {}
        for key, algo in (("saved", model), ("loaded", loaded)):
            actions[key], states[key] = algo.predict(observation, state=states[key], episode_start=starts, deterministic=True)
        assert np.array_equal(actions["saved"], actions["loaded"])
        assert all(np.array_equal(a, b) for a, b in zip(states["saved"], states["loaded"], strict=True))
        observation, _, dones, _ = cue_env.step(actions["saved"])
        starts = dones


def test_lstm_kwargs_a_rim_cannot_take_are_named(cue_env):
    cases = ((dict(bias=False), "bias"), (dict(dropout=0.1, proj_size=2, batch_first=True), "batch_first, proj_size"))
    for lstm_kwargs, named in cases:
        message = rf"lstm_kwargs=.*: {named} not taken by recurrent_core='rim' \(it takes dropout"
        with pytest.raises(PolicyArgumentError, match=message):
            make_model(cue_env, lstm_kwargs=lstm_kwargs)
