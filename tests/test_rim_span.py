"""The span-level RIM (sb3_metarim.cores.rim_span): its hand-written backward is the gradient of its forward
(gradcheck in float64), and it computes what autograd through every step computes, in a core and in training."""

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_metarim import MetaRIMPPO
from sb3_metarim.common.wrappers import PrevActionRewardWrapper
from sb3_metarim.cores.rim import RIM, StackedWeights, run_rims
from sb3_metarim.cores.rim_span import RIMSpan
from sb3_metarim.envs import CueMemoryEnv

from .conftest import SMALL_CORE

SEQ, BATCH, OBS = 5, 3, 4


def span_inputs(cell: str, sticky_bonus: float, cores: int, starts: bool, top_k: int) -> tuple:
    """RIMSpan.apply's arguments for ``cores`` small RIMs, in float64, every tensor a leaf that requires grad."""
    th.manual_seed(0)
    config = SMALL_CORE | dict(cell=cell, sticky_bonus=sticky_bonus, comm_heads=2, top_k=top_k)
    rims = [RIM(OBS, **config).double() for _ in range(cores)]
    first = rims[0]
    projected = [rim.input_attention.project_input(th.randn(SEQ, BATCH, OBS, dtype=th.float64)) for rim in rims]
    keys = th.stack([key for key, _ in projected], dim=1).unsqueeze(2).detach()
    values = th.stack([value for _, value in projected], dim=1).unsqueeze(2).detach()
    state_shape = (cores * first.num_units, BATCH, first.unit_size)
    h, c = th.randn(state_shape, dtype=th.float64), th.randn(state_shape, dtype=th.float64)
    previous = None
    if first.config.activity_size:
        previous = th.zeros(cores, first.num_units, BATCH, dtype=th.float64)
        previous[:, : first.top_k] = 1.0
    keep = None
    if starts:
        keep = th.ones(SEQ, 1, BATCH, 1, dtype=th.float64)
        keep[2, 0, 0] = keep[3, 0, 2] = 0.0
    weights = [None if w is None else w.detach().clone() for w in StackedWeights.of(rims).tensors()]
    if top_k < first.num_units:
        # Inactive modules are read by the others without a gradient through the read (by design, not the forward's
        # derivative): with the reads' weights at zero that path is zero in both, and the rest is checked exactly.
        weights[4].zero_()
    for leaf in [keys, values, h, c, *(w for w in weights if w is not None)]:
        leaf.requires_grad_(True)
    return first.span_options(cores), keys, values, h, c, previous, keep, weights


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(
    "top_k, sticky_bonus",
    [(4, 0.0), (2, 0.0), (2, 0.3)],
    ids=["all_active", "inactive_modules", "inactive_modules_sticky"],
)
@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("starts", [False, True], ids=["no_starts", "starts"])
def test_the_hand_written_backward_is_the_gradient_of_the_forward(cell, top_k, sticky_bonus, cores, starts):
    """gradcheck: the keys', values', states' and every weight's gradient, through the outputs and the final state;
    every module active (the communication's full derivative), or 2 of 4 (inactive modules keep their state and get
    no gradient from the step), episode starts inside the span."""
    options, keys, values, h, c, previous, keep, weights = span_inputs(cell, sticky_bonus, cores, starts, top_k)
    present = [w for w in weights if w is not None]

    def span(keys, values, h, c, *present):
        given = iter(present)
        all_weights = [None if w is None else next(given) for w in weights]
        outputs, h_last, c_last, _, _ = RIMSpan.apply(options, keys, values, h, c, previous, keep, *all_weights)
        return outputs, h_last, c_last

    assert th.autograd.gradcheck(span, (keys, values, h, c, *present), eps=1e-6, atol=1e-8, rtol=1e-6, fast_mode=True)


def trained_rims(cell: str, sticky_bonus: float, span: bool, dense_size: int) -> tuple:
    """Outputs, activity and gradients of an actor and a critic RIM run together on padded sequences with starts."""
    RIM.span_backward = span
    try:
        th.manual_seed(1)
        config = SMALL_CORE | dict(cell=cell, sticky_bonus=sticky_bonus, dense_size=dense_size)
        rims = [RIM(OBS, **config), RIM(OBS, **config)]
        inputs = [th.randn(12, 7, OBS, requires_grad=True) for _ in rims]
        states = [(th.zeros(1, 7, rims[0].hidden_size), th.zeros(1, 7, rims[0].hidden_size)) for _ in rims]
        starts = (th.rand(12, 7) < 0.15).float()
        results = run_rims(rims, inputs, states, starts)
        loss = sum((out.sin() * 3.0).sum() + h.square().sum() + c.sum() for out, (h, c) in results)
        loss.backward()
        grads = {f"{index}.{name}": p.grad for index, rim in enumerate(rims) for name, p in rim.named_parameters()}
        return [out.detach() for out, _ in results], [rim.last_active for rim in rims], grads, [x.grad for x in inputs]
    finally:
        RIM.span_backward = True


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("sticky_bonus", [0.0, 0.3])
def test_the_span_equals_autograd_through_every_step(cell, sticky_bonus):
    """float32 at a training shape (actor and critic together, a dense LSTM beside the modules): outputs to 1e-6,
    the same active modules, every gradient to 1e-5 of its scale."""
    span = trained_rims(cell, sticky_bonus, span=True, dense_size=6)
    steps = trained_rims(cell, sticky_bonus, span=False, dense_size=6)
    for got, expected in zip(span[0], steps[0], strict=True):
        assert th.allclose(got, expected, atol=1e-6)
    assert all(th.equal(got, expected) for got, expected in zip(span[1], steps[1], strict=True))
    assert span[2].keys() == steps[2].keys()
    for name, expected in steps[2].items():
        got = span[2][name]
        assert got is not None and expected is not None, name
        assert th.allclose(got, expected, atol=1e-5 * float(expected.abs().max()) + 1e-7), name
    for got, expected in zip(span[3], steps[3], strict=True):
        assert th.allclose(got, expected, atol=1e-5 * float(expected.abs().max()))


def test_the_span_runs_only_where_it_computes_the_same():
    """Attention dropout in training and the straight-through selection take autograd through every step."""
    th.manual_seed(0)
    x = th.randn(4, 2, OBS, requires_grad=True)
    for options, expected in ((dict(), True), (dict(dropout=0.2), False), (dict(selection="straight_through"), False)):
        rim = RIM(OBS, **(SMALL_CORE | options))
        state = (th.zeros(1, 2, rim.hidden_size), th.zeros(1, 2, rim.hidden_size))
        out, _ = rim(x, state)
        assert (out.grad_fn is not None and "RIMSpan" in repr(_graph_names(out))) == expected, options


def _graph_names(tensor: th.Tensor) -> set[str]:
    """The names of the autograd nodes behind ``tensor``."""
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def cue_memory(dict_observation: bool):
    """CueMemoryEnv (a Box), or with the previous action and reward as a Dict."""
    return lambda: PrevActionRewardWrapper(CueMemoryEnv()) if dict_observation else CueMemoryEnv()


@pytest.mark.parametrize("policy", ["MlpPolicy", "MultiInputPolicy"])
def test_training_with_the_span_follows_training_through_every_step(policy):
    """The same seed gives the same learning curve (the same episodes, parameters equal to float rounding) with the
    span as with autograd through every step, for Box and Dict observations."""

    def train(span: bool, steps: int) -> tuple:
        RIM.span_backward = span
        try:
            env = make_vec_env(cue_memory(policy == "MultiInputPolicy"), n_envs=2, seed=0)
            model = MetaRIMPPO(policy, env, n_steps=32, batch_size=32, n_epochs=2, fast_span=8, seed=0)
            model.learn(steps)
            returns = [info["r"] for info in model.ep_info_buffer]
            return returns, th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()
        finally:
            RIM.span_backward = True

    span_returns, span_parameters = train(True, 256)
    step_returns, step_parameters = train(False, 256)
    assert span_returns == step_returns and len(span_returns) > 10
    assert th.allclose(span_parameters, step_parameters, atol=1e-4)
    _, untrained = train(True, 0)
    assert (span_parameters - untrained).abs().max() > 1e-3  # training moved them 10x the tolerance above
