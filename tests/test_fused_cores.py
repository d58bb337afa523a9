"""The actor and critic RIMs (one layer or stacked) in one pass (run_rims, the policy's forward and evaluate_actions)
equal two passes."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from sb3_metarim.cores.rim import RIM, fusable_rims, run_rims
from sb3_metarim.meta_rim_ppo.policies import RIMActorCriticPolicy

from .conftest import SMALL_CORE

SEQ, N_SEQ, OBS = 6, 3, 5
SLOW = ("input_attention", "communication_attention")


def make_rims(cell: str, **options) -> tuple[RIM, RIM]:
    th.manual_seed(0)
    config = dict(SMALL_CORE, cell=cell) | options
    return RIM(OBS, **config), RIM(OBS, **config)


def random_states(rim: RIM, batch: int) -> tuple[th.Tensor, th.Tensor]:
    shape = (rim.num_layers, batch, rim.hidden_size)
    return th.randn(shape), th.randn(shape)


def episode_starts() -> th.Tensor:
    """(SEQ, N_SEQ) with starts in the middle of sequences (and one at the first step)."""
    starts = th.zeros(SEQ, N_SEQ)
    starts[2, 0] = starts[4, 1] = starts[0, 2] = starts[3, 2] = 1.0
    return starts


def grads(module: th.nn.Module) -> dict[str, th.Tensor | None]:
    return {name: None if p.grad is None else p.grad.clone() for name, p in module.named_parameters()}


def assert_same_grads(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name in got:
        if expected[name] is None:
            assert got[name] is None, name
        else:
            assert th.allclose(got[name], expected[name], atol=1e-5), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_run_rims_equals_each_core_alone(cell, frozen, num_layers):
    """Outputs, final states, active sets and every gradient (parameters and inputs) of one pass match two."""
    rims = make_rims(cell, num_layers=num_layers)
    if frozen:  # as the fast phase freezes the slow set
        for rim in rims:
            for name, param in rim.named_parameters():
                param.requires_grad_(not name.startswith(SLOW))
    inputs = [th.randn(SEQ, N_SEQ, OBS, requires_grad=True) for _ in rims]
    states = [random_states(rim, N_SEQ) for rim in rims]
    weights = [th.randn(SEQ, N_SEQ, rim.output_size) for rim in rims]
    starts = episode_starts()

    def run(fused: bool):
        for rim in rims:
            rim.zero_grad(set_to_none=True)
        for x in inputs:
            x.grad = None
        if fused:
            results = run_rims(rims, inputs, states, starts)
        else:
            results = [rim(x, state, starts) for rim, x, state in zip(rims, inputs, states, strict=True)]
        loss = sum((out * w).sum() + h.square().sum() + c.sum() for (out, (h, c)), w in zip(results, weights, strict=True))
        loss.backward()
        actives = [rim.last_active.clone() for rim in rims]
        detached = [(out.detach(), h.detach(), c.detach()) for out, (h, c) in results]
        return detached, actives, [grads(rim) for rim in rims], [x.grad.clone() for x in inputs]

    fused, alone = run(True), run(False)
    for got, expected in zip(fused[0], alone[0], strict=True):
        for name, a, b in zip(("output", "h", "c"), got, expected, strict=True):
            assert a.shape == b.shape and th.allclose(a, b, atol=1e-5), name
    for got, expected in zip(fused[1], alone[1], strict=True):
        assert got.shape == (SEQ, N_SEQ, num_layers * rims[0].num_units) and th.equal(got, expected)
    for got, expected in zip(fused[2], alone[2], strict=True):
        assert_same_grads(got, expected)
    for got, expected in zip(fused[3], alone[3], strict=True):
        assert th.allclose(got, expected, atol=1e-5)
    if frozen:
        assert all(grad is None for name, grad in fused[2][0].items() if name.startswith(SLOW))


def test_run_rims_without_grad_and_without_starts():
    rims = make_rims("lstm")
    inputs = [th.randn(SEQ, N_SEQ, OBS) for _ in rims]
    states = [random_states(rim, N_SEQ) for rim in rims]
    with th.no_grad():
        fused = run_rims(rims, inputs, states)
        alone = [rim(x, state) for rim, x, state in zip(rims, inputs, states, strict=True)]
    for (out, (h, c)), (ref_out, (ref_h, ref_c)) in zip(fused, alone, strict=True):
        assert th.allclose(out, ref_out, atol=1e-5) and th.allclose(h, ref_h, atol=1e-5) and th.allclose(c, ref_c, atol=1e-5)


def test_fusable_rims():
    a, b = make_rims("lstm")
    assert fusable_rims([a, b], training=True)
    assert not fusable_rims([a, a], training=False)  # one core twice: its last_active would be overwritten
    assert not fusable_rims([a, RIM(OBS, **(SMALL_CORE | {"top_k": 3}))], training=False)
    assert not fusable_rims([a, None], training=False)
    assert not fusable_rims([a, th.nn.LSTM(OBS, a.hidden_size)], training=False)

    class OtherRIM(RIM):
        pass

    assert not fusable_rims([a, OtherRIM(OBS, **SMALL_CORE)], training=False)
    with_dropout = make_rims("lstm", dropout=0.1)
    assert fusable_rims(with_dropout, training=False)
    assert not fusable_rims(with_dropout, training=True)  # one pass would draw the dropout masks in another order
    stacked = make_rims("lstm", num_layers=2)
    assert fusable_rims(stacked, training=True)
    assert not fusable_rims([a, stacked[0]], training=False)  # one layer and two
    with_layer_dropout = make_rims("lstm", num_layers=2, layer_dropout=0.5)
    assert fusable_rims(with_layer_dropout, training=False)
    assert not fusable_rims(with_layer_dropout, training=True)


def make_policy(**kwargs) -> RIMActorCriticPolicy:
    th.manual_seed(0)
    observation_space = spaces.Box(-1.0, 1.0, (OBS,), np.float32)
    core = kwargs.get("recurrent_core", "rim")
    # Each core its own options: an LSTM core refuses the RIM options it would ignore.
    options = {"rim": SMALL_CORE, "lstm": {"num_units": 4, "unit_size": 8}, "metods": {"num_neurons": 8}}[core]
    return RIMActorCriticPolicy(observation_space, spaces.Discrete(3), lambda _: 1e-3, **(options | kwargs))


def policy_inputs(policy: RIMActorCriticPolicy) -> tuple[th.Tensor, th.Tensor, RNNStates, th.Tensor]:
    """Padded sequences in the rollout buffer's (sequence-major) order, as in training."""
    th.manual_seed(1)
    obs = th.rand(N_SEQ * SEQ, OBS) * 2 - 1
    actions = th.randint(0, 3, (N_SEQ * SEQ,))
    layers, _, width = policy.lstm_hidden_state_shape
    states = RNNStates(*[(th.randn(layers, N_SEQ, width), th.randn(layers, N_SEQ, width)) for _ in range(2)])
    return obs, actions, states, episode_starts().T.flatten()


def run_policy(policy: RIMActorCriticPolicy, method: str, fused: bool, monkeypatch: pytest.MonkeyPatch):
    """:return: the outputs (detached), both cores' last_active and every parameter's gradient."""
    monkeypatch.setattr(policy, "fuses_cores", lambda: fused)
    policy.zero_grad(set_to_none=True)
    obs, actions, states, starts = policy_inputs(policy)
    if method == "forward":
        actions, values, log_prob, new_states = policy(obs, states, starts, deterministic=True)
        outputs = [actions, values, log_prob, *new_states.pi, *new_states.vf]
    else:
        outputs = list(policy.evaluate_actions(obs, actions, states, starts))
    sum(output.sum() for output in outputs if output.is_floating_point()).backward()
    actives = [core.last_active.clone() for core in (policy.lstm_actor, policy.lstm_critic)]
    return [output.detach() for output in outputs], actives, grads(policy)


@pytest.mark.parametrize("method", ["forward", "evaluate_actions"])
@pytest.mark.parametrize("share_features_extractor", [True, False])
@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize(
    "state_options",
    [{}, {"dense_size": 5}, {"sticky_bonus": 0.5}, {"n_lstm_layers": 2, "dense_size": 5}],
    ids=["rim", "dense", "sticky", "stacked"],
)
def test_policy_fused_pass_equals_separate_cores(method, share_features_extractor, frozen, state_options, monkeypatch):
    policy = make_policy(share_features_extractor=share_features_extractor, **state_options)
    assert policy.fuses_cores()
    if frozen:  # the fast phase: the slow set frozen
        for name, param in policy.named_parameters():
            param.requires_grad_(not any(pattern in name for pattern in SLOW))
    fused = run_policy(policy, method, True, monkeypatch)
    alone = run_policy(policy, method, False, monkeypatch)
    for got, expected in zip(fused[0], alone[0], strict=True):
        assert got.shape == expected.shape and th.allclose(got.float(), expected.float(), atol=1e-5)
    for got, expected in zip(fused[1], alone[1], strict=True):
        assert th.equal(got, expected)
    assert_same_grads(fused[2], alone[2])
    assert any(grad is not None and grad.abs().sum() > 0 for name, grad in fused[2].items() if "lstm_critic" in name)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(shared_lstm=True, enable_critic_lstm=False),
        dict(enable_critic_lstm=False),
        dict(recurrent_core="lstm"),
        dict(recurrent_core="metods"),
        dict(dropout=0.1),
        dict(n_lstm_layers=2, lstm_kwargs=dict(dropout=0.5)),
    ],
)
def test_policy_falls_back_to_separate_cores(kwargs, monkeypatch):
    """Where one pass does not apply, forward and evaluate_actions are sb3-contrib's, core by core."""
    policy = make_policy(**kwargs)
    policy.set_training_mode(True)
    assert not policy.fuses_cores()
    calls = []

    def recording(name: str):
        parent = getattr(RecurrentActorCriticPolicy, name)

        def method(self, *args, **kwargs):
            calls.append(name)
            return parent(self, *args, **kwargs)

        return method

    for name in ("forward", "evaluate_actions"):
        monkeypatch.setattr(RecurrentActorCriticPolicy, name, recording(name))
    obs, actions, states, starts = policy_inputs(policy)
    _, values, log_prob, _ = policy(obs, states, starts)
    values_again, _, _ = policy.evaluate_actions(obs, actions, states, starts)
    assert calls == ["forward", "evaluate_actions"]
    assert values.shape == values_again.shape == (N_SEQ * SEQ, 1) and log_prob.shape == (N_SEQ * SEQ,)
    if "dropout" in kwargs or "lstm_kwargs" in kwargs:
        policy.set_training_mode(False)  # no dropout in eval mode: one pass again
        assert policy.fuses_cores()
