"""The RIM step: top-k selection, frozen inactive modules, resets, shapes."""

import pytest
import torch as th

from sb3_metarim.cores.rim import RIM, RIMConfig

from .reference_rim import reference_forward

CELLS = ["lstm", "gru"]


def make_rim(cell: str, input_size: int = 5, **kwargs) -> RIM:
    """The paper's RIM (a fresh top-k at every step, ``sticky_bonus=0``, no dense LSTM) unless ``kwargs`` say otherwise:
    most tests here hold it against ``nn.LSTM``'s layout, whose state is the output."""
    th.manual_seed(0)
    options = {"num_units": 6, "top_k": 4, "unit_size": 8, "cell": cell, "sticky_bonus": 0.0, "dense_size": 0}
    return RIM(input_size, **{**options, **kwargs})


def random_state(rim: RIM, batch: int) -> tuple[th.Tensor, th.Tensor]:
    h = th.randn(1, batch, rim.hidden_size)
    c = th.randn(1, batch, rim.hidden_size) if rim.cell_type == "lstm" else th.zeros(1, batch, rim.hidden_size)
    return h, c


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_match_nn_lstm(cell):
    rim = make_rim(cell)
    lstm = th.nn.LSTM(5, rim.hidden_size)
    x = th.randn(7, 3, 5)
    state = random_state(rim, 3)
    out, (h, c) = rim(x, state)
    ref_out, (ref_h, ref_c) = lstm(x, state)
    assert out.shape == ref_out.shape == (7, 3, 48)
    assert h.shape == ref_h.shape and c.shape == ref_c.shape
    assert rim.num_layers == lstm.num_layers and rim.input_size == lstm.input_size
    assert th.equal(out[-1], h[0])


@pytest.mark.parametrize("cell", CELLS)
def test_exactly_top_k_modules_active(cell):
    rim = make_rim(cell)
    rim(th.randn(9, 11, 5), random_state(rim, 11))
    assert rim.last_active.shape == (9, 11, 6)
    assert (rim.last_active.sum(dim=-1) == 4).all()
    # Selection depends on the sample: not always the same four modules.
    assert rim.last_active.reshape(-1, 6).unique(dim=0).shape[0] > 1


@pytest.mark.parametrize("cell", CELLS)
def test_inactive_modules_keep_state_bit_for_bit(cell):
    rim = make_rim(cell)
    h, c = random_state(rim, 10)
    x = th.randn(1, 10, 5)
    _, (h_new, c_new) = rim(x, (h, c))
    active = rim.last_active[0].unsqueeze(-1).expand(10, 6, 8)
    as_units = lambda s: s.reshape(10, 6, 8)  # noqa: E731
    assert th.equal(as_units(h_new)[~active], as_units(h)[~active])
    assert th.equal(as_units(c_new)[~active], as_units(c)[~active])
    assert not th.equal(as_units(h_new)[active], as_units(h)[active])


def silence_unit_zero(rim: RIM) -> None:
    """Make module 0 lose the selection at every step: its input score is very negative."""
    attention = rim.input_attention
    with th.no_grad():
        # key = x[..., 0] * ones: positive whenever the first feature is positive.
        attention.key_value.weight.zero_()
        attention.key_value.weight[: attention.key_size, 0] = 1.0
        attention.key_value.weight[attention.key_size :].normal_()
        attention.query.weight.zero_()
        attention.query.bias.fill_(1.0)
        attention.query.bias[0] = -10.0


@pytest.mark.parametrize("cell", CELLS)
def test_always_inactive_module_gets_no_gradient(cell):
    rim = make_rim(cell)
    silence_unit_zero(rim)
    x = th.randn(6, 4, 5)
    x[..., 0] = x[..., 0].abs() + 0.5
    out, (h, c) = rim(x, random_state(rim, 4))
    assert not rim.last_active[..., 0].any()
    (out.square().sum() + h.sum() + c.sum()).backward()
    for name, param in rim.cell.named_parameters():
        assert th.count_nonzero(param.grad[0]) == 0, name
        assert th.count_nonzero(param.grad[1:]) > 0, name


@pytest.mark.parametrize("cell", CELLS)
def test_straight_through_selection_changes_only_the_scores_gradient(cell, monkeypatch):
    """The hard selection's forward pass; backward, the query and key also learn from each module's update."""
    # Both through autograd at every step (the straight-through selection's path), so the forward is the same floats.
    monkeypatch.setattr(RIM, "span_backward", False)
    hard, straight = make_rim(cell), make_rim(cell, selection="straight_through")
    x, state = th.randn(6, 4, 5), random_state(hard, 4)
    for steps in (6, 1):  # over one step, only the scores' parameters can differ (over more, all do, through h)
        results = []
        for rim in (hard, straight):
            rim.zero_grad()
            out, (h, c) = rim(x[:steps], state)
            out.square().sum().add(c.sum()).backward()
            grads = {name: param.grad.clone() for name, param in rim.named_parameters()}
            results.append(((out.detach(), h.detach(), c.detach(), rim.last_active), grads))
        (hard_values, hard_grads), (straight_values, straight_grads) = results
        assert all(th.equal(a, b) for a, b in zip(hard_values, straight_values, strict=True))
    scores = ("input_attention.query.weight", "input_attention.query.bias", "input_attention.key_value.weight")
    for name, grad in hard_grads.items():
        assert th.allclose(grad, straight_grads[name], atol=1e-6) != (name in scores), name


def test_dense_lstm_runs_beside_the_modules():
    """With dense_size, the state and output are the modules' (as without it) followed by an nn.LSTM's, both reset."""
    rim = make_rim("lstm", dense_size=10)
    plain = RIM(5, num_units=6, top_k=4, unit_size=8, sticky_bonus=0.0, dense_size=0)
    plain.load_state_dict({k: v for k, v in rim.state_dict().items() if not k.startswith("dense.")})
    x, starts = th.randn(7, 3, 5), th.zeros(7, 3)
    starts[4, 2] = 1.0
    h, c = th.randn(1, 3, 58), th.randn(1, 3, 58)
    out, (h_out, c_out) = rim(x, (h, c), starts)
    assert out.shape == (7, 3, 58) and rim.hidden_size == 58 and th.equal(out[-1], h_out[0])
    modules, (modules_h, modules_c) = plain(x, (h[..., :48], c[..., :48]), starts)
    assert th.equal(out[..., :48], modules) and th.equal(h_out[..., :48], modules_h)
    assert th.equal(c_out[..., :48], modules_c)
    dense_state = (h[..., 48:], c[..., 48:])
    first, _ = rim.dense(x[:4], dense_state)
    fresh, _ = rim.dense(x[4:, 2:3])
    assert th.allclose(out[:4, :, 48:], first, atol=1e-6) and th.allclose(out[4:, 2:3, 48:], fresh, atol=1e-6)
    # The sequences that start no episode run through the cut unchanged.
    through, _ = rim.dense(x[:, :2], (dense_state[0][:, :2].contiguous(), dense_state[1][:, :2].contiguous()))
    assert th.allclose(out[:, :2, 48:], through, atol=1e-6)


def test_sticky_selection_keeps_the_active_set_and_carries_it_in_the_state():
    """With a sticky_bonus the state ends with the last activity; a large bonus holds the set, a reset drops it."""
    rim = make_rim("lstm", sticky_bonus=1e6)
    plain = make_rim("lstm")
    assert rim.output_size == 48 and rim.hidden_size == 54 and plain.hidden_size == plain.output_size == 48
    x, starts = th.randn(6, 4, 5), th.zeros(6, 4)
    starts[3, 1] = 1.0
    h, c = th.randn(1, 4, 54), th.randn(1, 4, 54)
    h[..., 48:] = c[..., 48:] = 0.0  # no activity carried in: the first step selects as the plain RIM does
    out, (h_out, c_out) = rim(x, (h, c), starts)
    active = rim.last_active
    assert out.shape == (6, 4, 48) and h_out.shape == c_out.shape == (1, 4, 54)
    assert th.equal(h_out[0, :, 48:], active[-1].float()) and th.equal(c_out[0, :, 48:], active[-1].float())
    plain(x[:1], (h[..., :48], c[..., :48]))
    assert th.equal(active[0], plain.last_active[0])
    # The set never changes, except in sequence 1 from its episode start on (then held again).
    held = (active == active[:1]).all(dim=-1)
    assert held[:, [0, 2, 3]].all() and held[:3, 1].all()
    assert (active[3:, 1] == active[3, 1]).all()
    fresh = make_rim("lstm")
    fresh(x[3:4, 1:2], (th.zeros(1, 1, 48), th.zeros(1, 1, 48)))
    assert th.equal(active[3, 1], fresh.last_active[0, 0])


@pytest.mark.parametrize("bonus", [0.0, 0.5])
def test_a_sequence_run_in_pieces_equals_it_run_whole(bonus):
    """What the rollout buffer relies on: the carried state (the activity included) is all a step depends on."""
    rim = make_rim("lstm", sticky_bonus=bonus)
    x = th.randn(10, 3, 5)
    state = tuple(th.zeros(1, 3, rim.hidden_size) for _ in range(2))
    whole, whole_state = rim(x, state)
    whole_active = rim.last_active
    first, middle = rim(x[:4], state)
    first_active = rim.last_active
    second, end = rim(x[4:], middle)
    assert th.allclose(th.cat((first, second)), whole, atol=1e-6)
    assert th.equal(th.cat((first_active, rim.last_active)), whole_active)
    assert all(th.allclose(a, b, atol=1e-6) for a, b in zip(end, whole_state, strict=True))


@pytest.mark.parametrize("cell", CELLS)
def test_state_resets_at_episode_starts(cell):
    rim = make_rim(cell)
    x = th.randn(8, 3, 5)
    starts = th.zeros(8, 3)
    starts[3, 1] = 1.0
    out, _ = rim(x, random_state(rim, 3), starts)
    fresh, _ = rim(x[3:, 1:2], (th.zeros(1, 1, 48), th.zeros(1, 1, 48)))
    assert th.allclose(out[3:, 1:2], fresh, atol=1e-6)
    # The other sequences did not reset.
    fresh_other, _ = rim(x[3:, 0:1], (th.zeros(1, 1, 48), th.zeros(1, 1, 48)))
    assert not th.allclose(out[3:, 0:1], fresh_other, atol=1e-3)


def test_gru_carries_cell_state_through():
    rim = make_rim("gru")
    c = th.randn(1, 2, 48)
    _, (_, c_out) = rim(th.randn(4, 2, 5), (th.randn(1, 2, 48), c))
    assert th.equal(c_out, c)


@pytest.mark.parametrize("cell", CELLS)
def test_batch_independence(cell):
    """Each sample of a batch is processed independently, as RecurrentPPO's padded minibatches need."""
    rim = make_rim(cell)
    x = th.randn(5, 4, 5)
    state = random_state(rim, 4)
    out, _ = rim(x, state)
    single, _ = rim(x[:, 2:3], (state[0][:, 2:3], state[1][:, 2:3]))
    assert th.allclose(out[:, 2:3], single, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_k=7), "top_k=7"),
        (dict(top_k=0), "top_k=0"),
        (dict(unit_size=0), "unit_size=0"),
        (dict(comm_heads=-1), "comm_heads=-1"),
        (dict(cell="rnn"), "cell='rnn'"),
        (dict(dropout=1.5), "dropout=1.5"),
        (dict(selection="soft"), "selection='soft'"),
        (dict(dense_size=-1), "dense_size=-1"),
        (dict(sticky_bonus=-0.1), "sticky_bonus=-0.1"),
        (dict(sticky_bonus=float("inf")), "sticky_bonus=inf"),
        (dict(sticky_scale="relative"), "sticky_scale='relative'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = dict(num_units=6, top_k=4, unit_size=8) | kwargs
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RIM(5, **args)


def test_the_width_rule_keeps_six_modules_with_half_the_width_wherever_they_fit():
    """From lstm_hidden_size=12 on (nothing else given): 6 modules of width // 12, the dense LSTM the rest, top_k 4
    (the defaults); with num_units given, half the width over them wherever each gets at least 1."""
    for width in range(12, 513):
        unit_size = width // 12
        expected = {"num_units": 6, "unit_size": unit_size, "dense_size": width - 6 * unit_size}
        assert RIMConfig.options_for_width(width, {}) == expected, width
    for num_units in range(1, 9):
        for width in range(2 * num_units, 200):
            unit_size = width // (2 * num_units)
            expected = {"num_units": num_units, "unit_size": unit_size, "dense_size": width - num_units * unit_size}
            assert RIMConfig.options_for_width(width, {"num_units": num_units}) == expected, (width, num_units)
    assert RIMConfig(**RIMConfig.options_for_width(192, {})) == RIMConfig()


@pytest.mark.parametrize(
    "width, num_units, unit_size, dense_size, top_k, hidden_size",
    [
        (1, 1, 1, 0, 1, 1),
        (2, 2, 1, 0, 1, 4),
        (3, 3, 1, 0, 2, 6),
        (4, 4, 1, 0, 3, 8),
        (5, 5, 1, 0, 3, 10),
        (6, 6, 1, 0, 4, 12),
        (8, 6, 1, 2, 4, 14),
        (11, 6, 1, 5, 4, 17),
        (64, 6, 5, 34, 4, 70),
    ],
)
def test_narrow_widths_get_fewer_or_smaller_modules(width, num_units, unit_size, dense_size, top_k, hidden_size):
    """Below 12, modules of 1: 6 of them and a dense LSTM of the rest, below 6 one per unit of width and none; two
    thirds of them active (RIMConfig.options_for_width's table)."""
    config = RIMConfig(**RIMConfig.options_for_width(width, {}))
    assert (config.num_units, config.unit_size, config.dense_size, config.top_k) == (num_units, unit_size, dense_size, top_k)
    assert config.output_size == width and config.hidden_size == hidden_size
    rim = RIM(3, config)
    output, (h, _) = rim(th.randn(4, 2, 3), (th.zeros(1, 2, hidden_size), th.zeros(1, 2, hidden_size)))
    assert output.shape == (4, 2, width) and h.shape == (1, 2, hidden_size)
    assert (rim.last_active.sum(dim=-1) == top_k).all()


@pytest.mark.parametrize(
    "bonus, scale",
    [(0.0, "absolute"), (RIMConfig.sticky_bonus, "absolute"), (1.0, "spread")],
    ids=["paper", "default_sticky", "spread_sticky"],
)
@pytest.mark.parametrize("cell", CELLS)
def test_batched_step_equals_plain_reference(cell, bonus, scale):
    """Forward values, active sets and every gradient match the module-by-module equations."""
    rim = make_rim(cell, comm_heads=2, sticky_bonus=bonus, sticky_scale=scale)
    x = th.randn(5, 3, 5, requires_grad=True)
    state = random_state(rim, 3)
    if bonus:  # a real last activity: top_k ones
        activity = th.zeros(3, 6)
        activity[:, [1, 2, 4, 5]] = 1.0
        state = tuple(th.cat((s[..., :48], activity.unsqueeze(0)), dim=-1) for s in state)
    starts = th.zeros(5, 3)
    starts[2, 0] = 1.0
    weights = th.randn(5, 3, 48)

    def loss_and_grads(forward):
        rim.zero_grad()
        x.grad = None
        out, (h, c), active = forward()
        (out * weights).sum().add(h.square().sum() + c.sum()).backward()
        grads = {name: param.grad.clone() for name, param in rim.named_parameters()}
        return out.detach(), h.detach(), c.detach(), active, grads, x.grad.clone()

    def batched():
        out, final = rim(x, state, starts)
        return out, final, rim.last_active

    fast = loss_and_grads(batched)
    slow = loss_and_grads(lambda: reference_forward(rim, x, state, starts))
    for name, got, expected in zip(("output", "h", "c"), fast[:3], slow[:3], strict=True):
        assert th.allclose(got, expected, atol=1e-5), name
    assert th.equal(fast[3], slow[3])
    for name in fast[4]:
        assert th.allclose(fast[4][name], slow[4][name], rtol=1e-4, atol=1e-5), name
    assert th.allclose(fast[5], slow[5], rtol=1e-4, atol=1e-5)
