"""
The RIM's modules over a whole span as one autograd node with a hand-written backward, as cuDNN runs its LSTMs.

Autograd on a RIM step records dozens of small kernels per step on a few rows each, and replays them backward with
a weight-gradient product per step and per weight: at the batch sizes of PPO the time goes to that per-kernel
overhead, not to arithmetic. :class:`RIMSpan` runs the span forward with autograd off, keeping per step only what
its backward reads (the states a step started from, the gates, the attention probabilities, the active masks), and
walks the span backward computing only the gradients that flow through time (states, attention scores, the inputs'
keys and values). Each weight's gradient is then one batched product over all the span's steps.

It computes what :meth:`sb3_metarim.cores.rim.RIM._step` computes, step after step, up to the order of some
floating-point operations (the input gates are the attention times the values through the input weights, computed
once per span; the attention among modules is written out): outputs agree to about 1e-7, gradients to 1e-5 of
their scale (``tests/test_rim_span.py``). The top-k selection is a constant of the backward, as there.
"""

import math
from dataclasses import dataclass, fields
from typing import Any

import torch as th


@dataclass(frozen=True)
class SpanOptions:
    """
    What a span needs of the RIM's options (:class:`sb3_metarim.cores.rim.RIMConfig`).

    :param cores: ``G``, the number of cores run together (the actor's and the critic's).
    :param num_units: ``N``, the modules per core.
    :param top_k: The active modules per core and step.
    :param lstm_cell: ``True``: LSTM cells, ``False``: GRU cells.
    :param sticky_bonus: The selection's hysteresis (used when the span is given the last activity).
    :param sticky_spread: Whether ``sticky_bonus`` is in units of the scores' spread over the modules.
    :param heads: The communication attention's heads.
    :param comm_key_size: Its key size per head.
    :param comm_value_size: Its value size per head.
    """

    cores: int
    num_units: int
    top_k: int
    lstm_cell: bool
    sticky_bonus: float
    sticky_spread: bool
    heads: int
    comm_key_size: int
    comm_value_size: int


def run_span(
    options: SpanOptions,
    keys: th.Tensor,
    values: th.Tensor,
    h: th.Tensor,
    c: th.Tensor,
    previous: th.Tensor | None,
    keep: th.Tensor | None,
    weights: tuple[th.Tensor, ...],
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor | None]:
    """
    The modules of ``G`` cores over a span: :class:`RIMSpan` when a gradient is wanted, else its forward alone.

    :param options: The cores' options.
    :param keys: (T, G, 1, B, K) each step's input keys, scaled.
    :param values: (T, G, 1, B, V) each step's input values.
    :param h: (G * N, B, d) the modules' states before the span.
    :param c: (G * N, B, d)
    :param previous: (G, N, B) the last step's activity as 1/0 (with a ``sticky_bonus``, else ``None``).
    :param keep: (T, 1, B, 1) 0 before a step that starts an episode (the state is reset), else 1; ``None``: none.
    :param weights: :class:`sb3_metarim.cores.rim.StackedWeights`' tensors: hidden weight and bias, input weight and
        bias (``None`` for LSTM cells), communication query/key/value weight, output weight and bias.
    :return: the modules' outputs (T, G * N, B, d), the final ``h`` and ``c``, the activity (T, G, N, B) as booleans
        and the final activity as 1/0 (``None`` without ``previous``).
    """
    tensors = (keys, values, h, c, *(weight for weight in weights if weight is not None))
    if th.is_grad_enabled() and any(tensor.requires_grad for tensor in tensors):
        outputs, h, c, active, last = RIMSpan.apply(options, keys, values, h, c, previous, keep, *weights)
        return outputs, h, c, active, None if previous is None else last
    with th.no_grad():
        trace, c, previous, _ = _forward(options, keys, values, h, c, previous, keep, weights)
    return trace.outputs, trace.outputs[-1], c, trace.active, previous


class RIMSpan(th.autograd.Function):
    """:func:`run_span` as one autograd node (see the module's docstring); its arguments are :func:`run_span`'s, the
    weights unpacked."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        options: SpanOptions,
        keys: th.Tensor,
        values: th.Tensor,
        h: th.Tensor,
        c: th.Tensor,
        previous: th.Tensor | None,
        keep: th.Tensor | None,
        *weights: th.Tensor | None,
    ) -> tuple[th.Tensor, ...]:
        trace, c_last, last_activity, value_gates = _forward(options, keys, values, h, c, previous, keep, weights)
        ctx.options = options
        ctx.absent = [index for index, weight in enumerate(weights) if weight is None]
        ctx.has_keep = keep is not None
        present = [weight for weight in weights if weight is not None]
        ctx.save_for_backward(keys, values, value_gates, *trace.tensors(), *present, *([keep] if ctx.has_keep else []))
        # Without a last activity, an empty tensor in its place (an autograd node's outputs are tensors).
        last_activity = c.new_zeros(0) if last_activity is None else last_activity
        ctx.mark_non_differentiable(trace.active, last_activity)
        return trace.outputs, trace.outputs[-1].clone(), c_last, trace.active, last_activity

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any,
        grad_outputs: th.Tensor,
        grad_h: th.Tensor,
        grad_c: th.Tensor,
        *_: Any,
    ) -> tuple[th.Tensor | None, ...]:
        keys, values, value_gates, *saved = ctx.saved_tensors
        trace = Trace(*saved[: len(fields(Trace))])
        saved = saved[len(fields(Trace)) :]
        keep = saved.pop() if ctx.has_keep else None
        weights = list(saved)
        for index in ctx.absent:
            weights.insert(index, None)
        grads = _backward(ctx.options, keys, values, value_gates, trace, keep, weights, grad_outputs, grad_h, grad_c)
        keys_grad, values_grad, h_grad, c_grad, weight_grads = grads
        return None, keys_grad, values_grad, h_grad, c_grad, None, None, *weight_grads


@dataclass(frozen=True)
class Trace:
    """
    What the forward computes at each step of a span, in tensors of the whole span written in place step by step
    (no copy at the end): the backward reads them; the outputs and the activity are among them.

    :param h: (T, G * N, B, d) the modules' ``h`` each step started from (after a reset at an episode start).
    :param c: (T, G * N, B, d)
    :param from_hidden: (T, G * N, B, K + gates) each step's query and hidden gates, computed from ``h``.
    :param attention: (T, G, N, B) the input attention's probability of the input.
    :param gates: (T, G * N, B, gates) the cells' activations (LSTM: input, forget, output, candidate; GRU: reset,
        update, candidate).
    :param tanh_c: (T, G * N, B, d) ``tanh`` of the new cell state (LSTM cells; empty for GRU cells).
    :param h_new: (T, G * N, B, d) the candidate ``h`` before the communication.
    :param qkv: (T, G * N, B, heads * (2 * comm_key_size + comm_value_size)) the communication's queries, keys, values.
    :param probabilities: (T, G, N, N, B, heads) each module's attention over its core's modules.
    :param context: (T, G * N, B, heads * comm_value_size) what each module reads from the others.
    :param outputs: (T, G * N, B, d) the modules' ``h`` after each step.
    :param active: (T, G, N, B) which modules were active at each step.
    """

    h: th.Tensor
    c: th.Tensor
    from_hidden: th.Tensor
    attention: th.Tensor
    gates: th.Tensor
    tanh_c: th.Tensor
    h_new: th.Tensor
    qkv: th.Tensor
    probabilities: th.Tensor
    context: th.Tensor
    outputs: th.Tensor
    active: th.Tensor

    @classmethod
    def empty(cls, options: SpanOptions, steps: int, h: th.Tensor, weights: tuple[th.Tensor | None, ...]) -> "Trace":
        """:return: an uninitialised trace of ``steps`` steps, for states like ``h`` and these weights."""
        groups, batch, unit_size = h.shape
        cores, num_units = options.cores, options.num_units
        state = (steps, groups, batch, unit_size)
        return cls(
            h=h.new_empty(state),
            c=h.new_empty(state),
            from_hidden=h.new_empty(steps, groups, batch, weights[0].shape[-1]),
            attention=h.new_empty(steps, cores, num_units, batch),
            gates=h.new_empty(steps, groups, batch, weights[2].shape[-1]),
            tanh_c=h.new_empty(state if options.lstm_cell else (0,)),
            h_new=h.new_empty(state),
            qkv=h.new_empty(steps, groups, batch, weights[4].shape[-1]),
            probabilities=h.new_empty(steps, cores, num_units, num_units, batch, options.heads),
            context=h.new_empty(steps, groups, batch, weights[5].shape[1]),
            outputs=h.new_empty(state),
            active=th.empty(steps, cores, num_units, batch, dtype=th.bool, device=h.device),
        )

    def tensors(self) -> tuple[th.Tensor, ...]:
        """:return: the fields, in order (what the autograd node saves)."""
        return tuple(getattr(self, field.name) for field in fields(self))


def _forward(
    options: SpanOptions,
    keys: th.Tensor,
    values: th.Tensor,
    h: th.Tensor,
    c: th.Tensor,
    previous: th.Tensor | None,
    keep: th.Tensor | None,
    weights: tuple[th.Tensor | None, ...],
) -> tuple[Trace, th.Tensor, th.Tensor | None, th.Tensor]:
    """
    :return: the span's :class:`Trace`, the final ``c`` (the final ``h`` is the trace's last output), the final
        activity (``None`` without ``previous``), and the values through the cells' input weights (the backward
        reads them).
    """
    hidden_weight, hidden_bias, _, input_bias, qkv_weight, output_weight, output_bias = weights
    cores, num_units, heads = options.cores, options.num_units, options.heads
    groups, batch, unit_size = h.shape
    key_size = keys.shape[-1]
    comm_sizes = (options.comm_key_size, options.comm_key_size, options.comm_value_size)
    # A module's cell input is its attention times its core's value, so its input gates are the attention times the
    # value through the module's input weights: one product for the whole span instead of one per step.
    value_gates = _value_gates(values, weights[2], num_units)
    trace = Trace.empty(options, keys.shape[0], h, weights)
    for t in range(keys.shape[0]):
        if keep is None:
            h, c = trace.h[t].copy_(h), trace.c[t].copy_(c)
        else:
            h, c = th.mul(h, keep[t], out=trace.h[t]), th.mul(c, keep[t], out=trace.c[t])
            previous = None if previous is None else previous * keep[t, 0, :, 0]
        from_hidden = th.baddbmm(hidden_bias, h, hidden_weight, out=trace.from_hidden[t])
        query, hidden_gates = from_hidden.split((key_size, from_hidden.shape[-1] - key_size), dim=-1)
        scores = (query.view(cores, num_units, batch, key_size) * keys[t]).sum(dim=-1)
        attention = th.sigmoid(scores, out=trace.attention[t])
        active = select_active(scores, previous, options, out=trace.active[t])
        mask = active.view(groups, batch, 1)
        module_attention = attention.view(groups, batch, 1)
        if options.lstm_cell:
            gates = th.addcmul(hidden_gates, module_attention, value_gates[:, t])
            sigmoid_gates, candidate = gates.split((3 * unit_size, unit_size), dim=-1)
            activations = th.cat((th.sigmoid(sigmoid_gates), th.tanh(candidate)), dim=-1, out=trace.gates[t])
            i, f, o, g = activations.chunk(4, dim=-1)
            c_new = th.addcmul(f * c, i, g)
            h_new = th.mul(o, th.tanh(c_new, out=trace.tanh_c[t]), out=trace.h_new[t])
        else:
            input_gates = th.addcmul(input_bias, module_attention, value_gates[:, t])
            input_rz, input_n = input_gates.split((2 * unit_size, unit_size), dim=-1)
            hidden_rz, hidden_n = hidden_gates.split((2 * unit_size, unit_size), dim=-1)
            rz = th.sigmoid(input_rz + hidden_rz)
            r, z = rz.chunk(2, dim=-1)
            n = th.tanh(th.addcmul(input_n, r, hidden_n))
            th.cat((rz, n), dim=-1, out=trace.gates[t])
            h_new, c_new = th.addcmul(n, z, h - n, out=trace.h_new[t]), c
        qkv = th.bmm(h_new, qkv_weight, out=trace.qkv[t]).view(cores, num_units, batch, heads, -1)
        probabilities = trace.probabilities[t].copy_(_module_probabilities(qkv, comm_sizes))
        # Each module's context: its probabilities over its core's modules' values.
        value = qkv.split(comm_sizes, dim=-1)[2]
        th.sum(probabilities.unsqueeze(-1) * value.unsqueeze(1), dim=2, out=trace.context[t].view(value.shape))
        message = th.baddbmm(output_bias, trace.context[t], output_weight)
        h, c = th.where(mask, h_new + message, h, out=trace.outputs[t]), th.where(mask, c_new, c)
        previous = None if previous is None else active.to(h.dtype)
    return trace, c, previous, value_gates


def select_active(
    scores: th.Tensor, previous: th.Tensor | None, options: SpanOptions, out: th.Tensor | None = None
) -> th.Tensor:
    """
    The top-k selection (not differentiated: modules learn to compete only through the soft scores), each core among
    its own modules, with the sticky selection's hold for the modules active at the last step.

    :param scores: (G, N, B) the input attention's scores.
    :param previous: (G, N, B) the last step's activity as 1/0 (``None``: no hold).
    :param options: ``top_k``, ``sticky_bonus``, ``sticky_spread``.
    :param out: (G, N, B) boolean tensor to write the activity into (``None``: a new one).
    :return: (G, N, B) which modules are active.
    """
    scores = scores.detach()
    if previous is not None:
        hold = options.sticky_bonus * previous
        if options.sticky_spread:
            hold = hold * scores.std(dim=1, keepdim=True)
        scores = scores + hold
    top = th.topk(scores, options.top_k, dim=1).indices
    out = th.zeros_like(scores, dtype=th.bool) if out is None else out.fill_(False)
    return out.scatter_(1, top, True)


def _module_probabilities(qkv: th.Tensor, sizes: tuple[int, int, int]) -> th.Tensor:
    """
    :param qkv: (..., G, N, B, heads, query + key + value) the modules' queries, keys and values.
    :param sizes: the sizes of the query, key and value.
    :return: (..., G, N, N, B, heads) each module's (dim -4) attention over its core's modules (dim -3).
    """
    query, key, _ = qkv.split(sizes, dim=-1)
    scores = (query.unsqueeze(-4) * key.unsqueeze(-5)).sum(dim=-1) / math.sqrt(sizes[0])
    return th.softmax(scores, dim=-3)


def _value_gates(values: th.Tensor, input_weight: th.Tensor, num_units: int) -> th.Tensor:
    """
    :param values: (T, G, 1, B, V) each core's input values over the span.
    :param input_weight: (G * N, V, gates) the cells' input weights.
    :return: (G * N, T, B, gates) each core's values through each of its modules' input weights.
    """
    steps, batch = values.shape[0], values.shape[3]
    gates = th.bmm(_per_module(values, num_units), input_weight)
    return gates.view(input_weight.shape[0], steps, batch, -1)


def _per_module(values: th.Tensor, num_units: int) -> th.Tensor:
    """:return: (G * N, T * B, V), the (T, G, 1, B, V) values of each core repeated for each of its modules."""
    steps, cores, _, batch, size = values.shape
    per_core = values.squeeze(2).transpose(0, 1).reshape(cores, 1, steps * batch, size)
    return per_core.expand(cores, num_units, steps * batch, size).reshape(cores * num_units, steps * batch, size)


def _backward(
    options: SpanOptions,
    keys: th.Tensor,
    values: th.Tensor,
    value_gates: th.Tensor,
    trace: Trace,
    keep: th.Tensor | None,
    weights: list[th.Tensor | None],
    grad_outputs: th.Tensor,
    grad_h: th.Tensor,
    grad_c: th.Tensor,
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, list[th.Tensor | None]]:
    """
    :return: the gradients of the keys, values, initial ``h`` and ``c``, then of each weight (``None`` for an
        absent input bias), for the gradients of the span's outputs and final state.

    What depends on the forward alone (the activations' derivatives) is computed for the whole span before the loop;
    the loop carries the gradients through time; what they multiply into the weights and the inputs is computed
    after it, for the whole span.
    """
    hidden_weight, _, input_weight, input_bias, qkv_weight, output_weight, _ = weights
    h_in, c_in, attention, gates, h_new, probabilities, context = (
        trace.h,
        trace.c,
        trace.attention,
        trace.gates,
        trace.h_new,
        trace.probabilities,
        trace.context,
    )
    cores, num_units, heads = options.cores, options.num_units, options.heads
    steps, groups, batch, unit_size = h_in.shape
    key_size = keys.shape[-1]
    scale = 1.0 / math.sqrt(options.comm_key_size)
    masks = trace.active.view(steps, groups, batch, 1).to(h_in.dtype)
    attention_slope = (attention * (1.0 - attention)).view(steps, groups, batch)
    comm_sizes = (options.comm_key_size, options.comm_key_size, options.comm_value_size)
    query_c, key_c, value_c = trace.qkv.view(steps, cores, num_units, batch, heads, -1).split(comm_sizes, dim=-1)
    query, hidden_gates = trace.from_hidden.split((key_size, trace.from_hidden.shape[-1] - key_size), dim=-1)
    if options.lstm_cell:
        # gates' gradient = [dc, dc, dh, dc] * gate_factors (input, forget, output, candidate).
        i, f, o, g = gates.chunk(4, dim=-1)
        tanh_c = trace.tanh_c
        gate_factors = th.cat((g * i * (1.0 - i), c_in * f * (1.0 - f), tanh_c * o * (1.0 - o), i * (1.0 - g * g)), -1)
        h_to_c = o * (1.0 - tanh_c * tanh_c)
    else:
        # [dn, dh, dn, dn] * gate_factors = the gradients of (reset, update, hidden candidate, input candidate).
        r, z, n = gates.chunk(3, dim=-1)
        hidden_n = hidden_gates[..., 2 * unit_size :]
        gate_factors = th.cat((hidden_n * r * (1.0 - r), (h_in - n) * z * (1.0 - z), r, th.ones_like(r)), dim=-1)
        h_to_n = (1.0 - z) * (1.0 - n * n)
        # The value gates laid out as the gradients are: reset, update, (none for the hidden candidate), candidate.
        reset_update, candidate = value_gates.split((2 * unit_size, unit_size), dim=-1)
        value_gates = th.cat((reset_update, th.zeros_like(candidate), candidate), dim=-1)
    output_weight_t, qkv_weight_t = output_weight.transpose(1, 2).contiguous(), qkv_weight.transpose(1, 2).contiguous()
    hidden_weight_t = hidden_weight.transpose(1, 2).contiguous()

    dh, dc = grad_h.clone(), grad_c.clone()
    # Per step, what each weight's gradient multiplies with the saved inputs, for one product each after the loop.
    hidden_grads, gate_grads, message_grads, qkv_grads, score_grads = [], [], [], [], []
    for t in reversed(range(steps)):
        dh = dh + grad_outputs[t]
        mask = masks[t]
        dh_step = dh * mask
        dh_prev = dh - dh_step
        message_grads.append(dh_step)
        # The communication attention: h_new -> qkv -> softmax over the modules -> context -> message.
        dcontext = th.bmm(dh_step, output_weight_t).view(cores, num_units, batch, heads, -1)
        p = probabilities[t]
        dvalue_c = (p.unsqueeze(-1) * dcontext.unsqueeze(2)).sum(dim=1)
        dp = (dcontext.unsqueeze(2) * value_c[t].unsqueeze(1)).sum(dim=-1)
        dscores_c = p * (dp - (dp * p).sum(dim=2, keepdim=True)) * scale
        dquery_c = (dscores_c.unsqueeze(-1) * key_c[t].unsqueeze(1)).sum(dim=2)
        dkey_c = (dscores_c.unsqueeze(-1) * query_c[t].unsqueeze(2)).sum(dim=1)
        dqkv = th.cat((dquery_c, dkey_c, dvalue_c), dim=-1).view(groups, batch, -1)
        qkv_grads.append(dqkv)
        # Inactive modules are read by the others but get no gradient through being read.
        dh_new = th.addcmul(dh_step, mask, th.bmm(dqkv, qkv_weight_t))
        if options.lstm_cell:
            dc_new = dc * mask
            dc_total = th.addcmul(dc_new, dh_new, h_to_c[t])
            dgates = th.cat((dc_total, dc_total, dh_new, dc_total), dim=-1).mul_(gate_factors[t])
            dc_prev = th.addcmul(dc - dc_new, dc_total, f[t])
            dhidden_gates = dgates
        else:
            dn = dh_new * h_to_n[t]
            dgates = th.cat((dn, dh_new, dn, dn), dim=-1).mul_(gate_factors[t])
            dhidden_gates = dgates[..., : 3 * unit_size]
            dh_prev = th.addcmul(dh_prev, dh_new, z[t])
            dc_prev = dc  # a GRU cell carries c
        gate_grads.append(dgates)
        # The input attention: the input gates are sigmoid(query . key) times the value gates.
        dscores = (dgates * value_gates[:, t]).sum(dim=-1) * attention_slope[t]
        score_grads.append(dscores)
        dquery = dscores.view(cores, num_units, batch, 1) * keys[t]
        dfrom_hidden = th.cat((dquery.view(groups, batch, key_size), dhidden_gates), dim=-1)
        hidden_grads.append(dfrom_hidden)
        dh_prev = th.baddbmm(dh_prev, dfrom_hidden, hidden_weight_t)
        if keep is not None:
            dh_prev, dc_prev = dh_prev * keep[t], dc_prev * keep[t]
        dh, dc = dh_prev, dc_prev

    def over_span(tensor: th.Tensor) -> th.Tensor:
        # (T, G * N, B, size) -> (G * N, T * B, size): the span as one batch of each module's rows.
        return tensor.transpose(0, 1).reshape(groups, steps * batch, -1)

    def joined(grads: list[th.Tensor]) -> th.Tensor:
        # Per step (G * N, B, size), last step first -> (G * N, T * B, size), first step first.
        return th.cat(grads[::-1], dim=1)

    hidden_grad, message_grad, gate_grad = joined(hidden_grads), joined(message_grads), joined(gate_grads)
    score_grad = th.stack(score_grads[::-1]).view(steps, cores, num_units, batch, 1)
    keys_grad = (score_grad * query.view(steps, cores, num_units, batch, key_size)).sum(dim=2, keepdim=True)
    if not options.lstm_cell:
        reset_update, _, candidate = gate_grad.split((2 * unit_size, unit_size, unit_size), dim=-1)
        gate_grad = th.cat((reset_update, candidate), dim=-1)
    # The cells' inputs are the attention times the values: the input gates' gradient times the attention, read
    # by each module's input weights.
    attended_grad = gate_grad * over_span(attention.view(steps, groups, batch, 1))
    values_grad = th.bmm(attended_grad, input_weight.transpose(1, 2)).view(cores, num_units, steps, batch, -1).sum(1)
    weight_grads = [
        th.bmm(over_span(h_in).transpose(1, 2), hidden_grad),
        hidden_grad.sum(dim=1, keepdim=True),
        th.bmm(_per_module(values, num_units).transpose(1, 2), attended_grad),
        None if input_bias is None else gate_grad.sum(dim=1, keepdim=True),
        th.bmm(over_span(h_new).transpose(1, 2), joined(qkv_grads)),
        th.bmm(over_span(context).transpose(1, 2), message_grad),
        message_grad.sum(dim=1, keepdim=True),
    ]
    return keys_grad, values_grad.transpose(0, 1).unsqueeze(2), dh, dc, weight_grads
