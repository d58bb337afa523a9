"""A plain RIM step, written from the equations sample by sample and module by module.

Slow on purpose: it is the yardstick for the batched implementation in ``sb3_metarim.cores.rim``.
It reads the RIM's parameters but none of its code.
"""

import math

import torch as th

from sb3_metarim.cores.rim import RIM


def reference_forward(rim: RIM, inputs: th.Tensor, state: tuple[th.Tensor, th.Tensor], starts: th.Tensor):
    """
    :return: outputs (seq, batch, output), final (h, c) in nn.LSTM layout (each: the modules, then the last step's
        activity with a sticky_bonus), active mask (seq, batch, N).
    """
    n, d = rim.num_units, rim.unit_size
    sticky = rim.config.activity_size > 0  # the state carries the last activity after the modules
    h = list(state[0][0, :, : n * d].reshape(-1, n, d).unbind(0))
    c = list(state[1][0, :, : n * d].reshape(-1, n, d).unbind(0))
    previous = list(state[0][0, :, n * d :].unbind(0)) if sticky else [None] * len(h)
    outputs, actives = [], []
    for t in range(inputs.shape[0]):
        step_out, step_active = [], []
        for b in range(inputs.shape[1]):
            keep = 1.0 - starts[t, b]
            last = None if previous[b] is None else previous[b] * keep
            h[b], c[b], active = reference_step(rim, inputs[t, b], h[b] * keep, c[b] * keep, last)
            previous[b] = active.to(h[b].dtype) if sticky else None
            step_out.append(h[b].reshape(-1))
            step_active.append(active)
        outputs.append(th.stack(step_out))
        actives.append(th.stack(step_active))

    def final(parts: list[th.Tensor]) -> th.Tensor:
        pairs = zip(parts, previous, strict=True)
        rows = [th.cat([part.reshape(-1), *([] if last is None else [last])]) for part, last in pairs]
        return th.stack(rows).unsqueeze(0)

    return th.stack(outputs), (final(h), final(c)), th.stack(actives)


def reference_step(rim: RIM, x: th.Tensor, h: th.Tensor, c: th.Tensor, previous: th.Tensor | None = None):
    """One sample: x (input_size,), h and c (N, d), previous (N,) the last step's activity with a sticky_bonus."""
    attention, cell, comm = rim.input_attention, rim.cell, rim.communication_attention
    dk = attention.key_size
    key = attention.key_value.weight[:dk] @ x
    value = attention.key_value.weight[dk:] @ x
    scores = th.stack(
        [(h[i] @ attention.query.weight[i] + attention.query.bias[i, 0]) @ key / math.sqrt(dk) for i in range(rim.num_units)]
    )
    attend_input = th.stack([th.softmax(th.stack([s, th.zeros(())]), dim=0)[0] for s in scores])
    selection = scores.detach()
    if previous is not None:
        spread = selection.std() if rim.config.sticky_scale == "spread" else 1.0
        selection = selection + rim.sticky_bonus * spread * previous
    active_ids = set(th.topk(selection, rim.top_k).indices.tolist())

    candidates_h, candidates_c = [], []
    for i in range(rim.num_units):
        module_input = attend_input[i] * value
        if rim.cell_type == "lstm":
            gates = (
                module_input @ cell.input_gates.weight[i] + cell.input_gates.bias[i, 0] + h[i] @ cell.hidden_gates.weight[i]
            )
            in_gate, forget, out_gate, candidate = gates.chunk(4)
            c_i = th.sigmoid(forget) * c[i] + th.sigmoid(in_gate) * th.tanh(candidate)
            h_i = th.sigmoid(out_gate) * th.tanh(c_i)
        else:
            gi = module_input @ cell.input_gates.weight[i] + cell.input_gates.bias[i, 0]
            gh = h[i] @ cell.hidden_gates.weight[i] + cell.hidden_gates.bias[i, 0]
            reset = th.sigmoid(gi[: 2 * rim.unit_size][: rim.unit_size] + gh[: rim.unit_size])
            update = th.sigmoid(gi[rim.unit_size : 2 * rim.unit_size] + gh[rim.unit_size : 2 * rim.unit_size])
            new = th.tanh(gi[2 * rim.unit_size :] + reset * gh[2 * rim.unit_size :])
            h_i, c_i = (1 - update) * new + update * h[i], c[i]
        candidates_h.append(h_i)
        candidates_c.append(c_i)

    read = [candidates_h[j] if j in active_ids else candidates_h[j].detach() for j in range(rim.num_units)]
    width = 2 * comm.key_size + comm.value_size
    new_h, new_c = [], []
    for i in range(rim.num_units):
        if i not in active_ids:
            new_h.append(h[i])
            new_c.append(c[i])
            continue
        heads = []
        for head in range(comm.heads):
            start = head * width
            q_cols = slice(start, start + comm.key_size)
            k_cols = slice(start + comm.key_size, start + 2 * comm.key_size)
            v_cols = slice(start + 2 * comm.key_size, start + width)
            query = read[i] @ comm.query_key_value.weight[i][:, q_cols]
            keys = th.stack([read[j] @ comm.query_key_value.weight[j][:, k_cols] for j in range(rim.num_units)])
            values = th.stack([read[j] @ comm.query_key_value.weight[j][:, v_cols] for j in range(rim.num_units)])
            weights = th.softmax(keys @ query / math.sqrt(comm.key_size), dim=0)
            heads.append(weights @ values)
        message = th.cat(heads) @ comm.output.weight[i] + comm.output.bias[i, 0]
        new_h.append(candidates_h[i] + message)
        new_c.append(candidates_c[i])
    active = th.tensor([i in active_ids for i in range(rim.num_units)])
    return th.stack(new_h), th.stack(new_c), active
