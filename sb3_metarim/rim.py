"""Recurrent Independent Mechanisms (Goyal et al. 2019) as a drop-in for ``nn.LSTM`` in sb3-contrib."""

import math

import torch as th
from torch import nn

RIM_CELLS = ("lstm", "gru")


class GroupLinear(nn.Module):
    """
    One linear map per module, applied to all modules at once.

    :param num_groups: Number of modules (groups).
    :param in_features: Input size of each group.
    :param out_features: Output size of each group.
    :param bias: Whether each group has a bias.
    """

    def __init__(self, num_groups: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(th.empty(num_groups, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(th.empty(num_groups, out_features).uniform_(-bound, bound)) if bias else None

    def forward(self, x: th.Tensor) -> th.Tensor:
        """
        :param x: (batch, num_groups, in_features)
        :return: (batch, num_groups, out_features)
        """
        out = th.einsum("bni,nio->bno", x, self.weight)
        return out if self.bias is None else out + self.bias


class RIM(nn.Module):
    """
    A layer of Recurrent Independent Mechanisms that behaves like a one-layer ``nn.LSTM``.

    Each step: every module queries the two slots [input, null] (the null key and value are zero);
    the ``top_k`` modules attending most to the input are active; every module runs its own LSTM or
    GRU cell on its attended input; active modules read from all modules through multi-head
    communication attention (residual); inactive modules keep their state exactly and receive no
    gradient from the step. The state is an ``(h, c)`` pair of ``(1, batch, num_units * unit_size)``
    tensors, like ``nn.LSTM``; a GRU cell carries ``c`` through unchanged.

    :param input_size: Size of the input features.
    :param num_units: Number of modules N.
    :param top_k: Number of active modules per step, in 1..N.
    :param unit_size: Hidden size of each module.
    :param cell: ``"lstm"`` or ``"gru"``.
    :param input_key_size: Key/query size of the input attention.
    :param input_value_size: Value size of the input attention (the input size of each module's cell).
    :param comm_heads: Number of heads of the communication attention.
    :param comm_key_size: Key/query size per head of the communication attention.
    :param comm_value_size: Value size per head of the communication attention.
    :param dropout: Dropout on the attention probabilities. Keep 0 with PPO: collection runs in eval
        mode and training in train mode, so dropout biases the probability ratio.
    """

    num_layers = 1

    def __init__(
        self,
        input_size: int,
        num_units: int = 6,
        top_k: int = 4,
        unit_size: int = 32,
        cell: str = "lstm",
        input_key_size: int = 64,
        input_value_size: int = 64,
        comm_heads: int = 4,
        comm_key_size: int = 32,
        comm_value_size: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_rim_arguments(
            num_units=num_units,
            top_k=top_k,
            unit_size=unit_size,
            cell=cell,
            input_key_size=input_key_size,
            input_value_size=input_value_size,
            comm_heads=comm_heads,
            comm_key_size=comm_key_size,
            comm_value_size=comm_value_size,
            dropout=dropout,
        )
        self.input_size = input_size
        self.num_units = num_units
        self.top_k = top_k
        self.unit_size = unit_size
        self.hidden_size = num_units * unit_size
        self.cell_type = cell
        self.comm_heads = comm_heads
        self.comm_key_size = comm_key_size
        self.comm_value_size = comm_value_size

        self.input_attention = InputAttention(input_size, num_units, unit_size, input_key_size, input_value_size)
        cell_class = GroupLSTMCell if cell == "lstm" else GroupGRUCell
        self.cell = cell_class(num_units, input_value_size, unit_size)
        self.communication_attention = CommunicationAttention(num_units, unit_size, comm_heads, comm_key_size, comm_value_size)
        self.dropout = nn.Dropout(dropout)
        self.last_active: th.Tensor | None = None

    def forward(
        self,
        input: th.Tensor,
        state: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor | None = None,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """
        Run a sequence.

        :param input: (seq_len, batch, input_size)
        :param state: ``(h, c)``, each ``(1, batch, num_units * unit_size)``
        :param episode_starts: optional (seq_len, batch) 0/1 flags: the state is reset to zero
            before a step whose flag is 1.
        :return: output (seq_len, batch, num_units * unit_size) and the final ``(h, c)``.
            ``self.last_active`` holds the (seq_len, batch, num_units) boolean activity mask.
        """
        seq_len, batch = input.shape[:2]
        h = state[0].reshape(batch, self.num_units, self.unit_size)
        c = state[1].reshape(batch, self.num_units, self.unit_size)
        # Keys and values depend on the input only: project the whole sequence at once.
        keys, values = self.input_attention.project_input(input)
        keep = None if episode_starts is None else (1.0 - episode_starts).reshape(seq_len, batch, 1, 1)

        outputs, actives = [], []
        for t in range(seq_len):
            if keep is not None:
                h, c = h * keep[t], c * keep[t]
            h, c, active = self._step(keys[t], values[t], h, c)
            outputs.append(h)
            actives.append(active)
        self.last_active = th.stack(actives).detach()
        output = th.stack(outputs).reshape(seq_len, batch, self.hidden_size)
        return output, (h.reshape(1, batch, self.hidden_size), c.reshape(1, batch, self.hidden_size))

    def _step(self, key: th.Tensor, value: th.Tensor, h: th.Tensor, c: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        scores = self.input_attention.scores(h, key)
        # Softmax over the two slots [input, null] with a zero null score is a sigmoid.
        attended = self.dropout(th.sigmoid(scores)).unsqueeze(-1) * value.unsqueeze(1)
        # Selection is not differentiated: modules learn to compete only through the soft scores.
        top = th.topk(scores.detach(), self.top_k, dim=1).indices
        active = th.zeros_like(scores, dtype=th.bool).scatter_(1, top, True)

        h_cand, c_cand = self.cell(attended, h, c)
        mask = active.unsqueeze(-1)
        # Inactive modules are still read by the others, but get no gradient through being read.
        h_read = th.where(mask, h_cand, h_cand.detach())
        h_cand = h_cand + self.communication_attention(h_read, self.dropout)
        return th.where(mask, h_cand, h), th.where(mask, c_cand, c), active


class GroupLSTMCell(nn.Module):
    """
    One LSTM cell per module, all modules stepped by one fused group matmul over [input, h].

    :param num_units: Number of modules.
    :param input_size: Input size of each module.
    :param unit_size: Hidden size of each module.
    """

    def __init__(self, num_units: int, input_size: int, unit_size: int) -> None:
        super().__init__()
        self.gates = GroupLinear(num_units, input_size + unit_size, 4 * unit_size)

    def forward(self, x: th.Tensor, h: th.Tensor, c: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """:return: the candidate ``(h, c)`` of every module, each (batch, num_units, unit_size)."""
        i, f, g, o = self.gates(th.cat((x, h), dim=-1)).chunk(4, dim=-1)
        c_new = th.sigmoid(f) * c + th.sigmoid(i) * th.tanh(g)
        return th.sigmoid(o) * th.tanh(c_new), c_new


class GroupGRUCell(nn.Module):
    """
    One GRU cell per module. The cell state ``c`` is carried through unchanged.

    :param num_units: Number of modules.
    :param input_size: Input size of each module.
    :param unit_size: Hidden size of each module.
    """

    def __init__(self, num_units: int, input_size: int, unit_size: int) -> None:
        super().__init__()
        self.input_gates = GroupLinear(num_units, input_size, 3 * unit_size)
        # Separate from the input part: the reset gate scales only the hidden part of the candidate.
        self.hidden_gates = GroupLinear(num_units, unit_size, 3 * unit_size)

    def forward(self, x: th.Tensor, h: th.Tensor, c: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """:return: the candidate ``(h, c)`` of every module, each (batch, num_units, unit_size)."""
        x_r, x_z, x_n = self.input_gates(x).chunk(3, dim=-1)
        h_r, h_z, h_n = self.hidden_gates(h).chunk(3, dim=-1)
        r = th.sigmoid(x_r + h_r)
        z = th.sigmoid(x_z + h_z)
        n = th.tanh(x_n + r * h_n)
        return (1.0 - z) * n + z * h, c


class InputAttention(nn.Module):
    """
    Single-head attention of each module over [input, null].

    Key and value projections have no bias, so the null slot's key and value are exactly zero.
    The query has a bias: at a zero (reset) state every module would otherwise score exactly 0.

    :param input_size: Size of the input.
    :param num_units: Number of modules.
    :param unit_size: Hidden size of each module (the query comes from the module's state).
    :param key_size: Key/query size.
    :param value_size: Value size.
    """

    def __init__(self, input_size: int, num_units: int, unit_size: int, key_size: int, value_size: int) -> None:
        super().__init__()
        self.key_size = key_size
        self.value_size = value_size
        self.key_value = nn.Linear(input_size, key_size + value_size, bias=False)
        self.query = GroupLinear(num_units, unit_size, key_size)

    def project_input(self, input: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """:return: keys (..., key_size) and values (..., value_size) of the input."""
        return self.key_value(input).split((self.key_size, self.value_size), dim=-1)

    def scores(self, h: th.Tensor, key: th.Tensor) -> th.Tensor:
        """:return: (batch, num_units) scaled scores of the input slot (the null slot scores 0)."""
        query = self.query(h)
        return th.einsum("bnk,bk->bn", query, key) / math.sqrt(self.key_size)


class CommunicationAttention(nn.Module):
    """
    Multi-head attention of each module over all modules, projected back to the module size.

    :param num_units: Number of modules.
    :param unit_size: Hidden size of each module.
    :param heads: Number of heads.
    :param key_size: Key/query size per head.
    :param value_size: Value size per head.
    """

    def __init__(self, num_units: int, unit_size: int, heads: int, key_size: int, value_size: int) -> None:
        super().__init__()
        self.heads = heads
        self.key_size = key_size
        self.value_size = value_size
        self.query_key_value = GroupLinear(num_units, unit_size, heads * (2 * key_size + value_size), bias=False)
        self.output = GroupLinear(num_units, heads * value_size, unit_size)

    def forward(self, h: th.Tensor, dropout: nn.Module) -> th.Tensor:
        """
        :param h: (batch, num_units, unit_size) module states.
        :param dropout: dropout applied to the attention probabilities.
        :return: (batch, num_units, unit_size) what each module reads.
        """
        batch, num_units = h.shape[:2]
        qkv = self.query_key_value(h).view(batch, num_units, self.heads, -1)
        query, key, value = qkv.split((self.key_size, self.key_size, self.value_size), dim=-1)
        scores = th.einsum("bnhk,bmhk->bhnm", query, key) / math.sqrt(self.key_size)
        probs = dropout(th.softmax(scores, dim=-1))
        context = th.einsum("bhnm,bmhv->bnhv", probs, value).reshape(batch, num_units, -1)
        return self.output(context)


def check_rim_arguments(**kwargs) -> None:
    """Raise a ``ValueError`` naming the first RIM argument that is out of range."""
    for name in (
        "num_units",
        "top_k",
        "unit_size",
        "input_key_size",
        "input_value_size",
        "comm_heads",
        "comm_key_size",
        "comm_value_size",
    ):
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: must be a positive integer")
    if kwargs["top_k"] > kwargs["num_units"]:
        raise ValueError(f"top_k={kwargs['top_k']}: must be between 1 and num_units={kwargs['num_units']}")
    if kwargs["cell"] not in RIM_CELLS:
        raise ValueError(f"cell={kwargs['cell']!r}: must be one of {RIM_CELLS}")
    if not 0.0 <= kwargs["dropout"] < 1.0:
        raise ValueError(f"dropout={kwargs['dropout']!r}: must be in [0, 1)")
