"""Recurrent Independent Mechanisms (Goyal et al. 2019) as a drop-in for ``nn.LSTM`` in sb3-contrib."""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.cores.options import CoreOptions, split_over_units
from sb3_metarim.cores.rim_span import SpanOptions, run_span, select_active

RIM_CELLS = ("lstm", "gru")
RIM_SELECTIONS = ("hard", "straight_through")
# What a RIM takes of nn.LSTM's arguments (the policy's lstm_kwargs): the rest have no meaning for it.
RIM_RNN_ARGUMENTS = ("dropout",)
STICKY_SCALES = ("absolute", "spread")
# The slow set of fast/slow training (patterns over the policy's parameter names, MetaRIMPPO's slow_parameters): the
# attention, the RIM's meta-learned structure (Madan et al. 2021).
RIM_SLOW_PARAMETERS = ("input_attention", "communication_attention")


class GroupLinear(nn.Module):
    """
    One linear map per module, applied to all modules at once with one batched matmul.

    Inputs are module-major, ``(num_groups, batch, in_features)``, so the matmul needs no copy.

    :param num_groups: Number of modules (groups).
    :param in_features: Input size of each group.
    :param out_features: Output size of each group.
    :param bias: Whether each group has a bias.
    """

    def __init__(self, num_groups: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(th.empty(num_groups, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(th.empty(num_groups, 1, out_features).uniform_(-bound, bound)) if bias else None

    def forward(self, x: th.Tensor) -> th.Tensor:
        """
        :param x: (num_groups, batch, in_features)
        :return: (num_groups, batch, out_features)
        """
        return th.bmm(x, self.weight) if self.bias is None else th.baddbmm(self.bias, x, self.weight)


@dataclass(frozen=True)
class RIMConfig(CoreOptions):
    """
    The options of a :class:`RIM`, in one place: their defaults, their meaning and their checks. The RIM
    policies take the same names in ``policy_kwargs`` (``num_units``, ``top_k``, ...). ``RecurrentPPO``'s
    ``lstm_hidden_size``, the output's width, sets the options it leaves open by :meth:`options_for_width`'s rule:
    any width works (192 gives the defaults), and only options given that cannot hold it are an error.

    :param num_units: Number of modules N. Why this default: :ref:`why-top-k`.
    :param top_k: Number of active modules per step, in 1..N. Why this default: :ref:`why-top-k`.
    :param unit_size: Hidden size of each module; the modules' width is ``num_units * unit_size`` (the paper's
        is 32; 16 here leaves half of the default width of 192 to the dense LSTM).
    :param cell: Cell of each module, ``"lstm"`` or ``"gru"`` (a GRU core carries its cell state unchanged).
    :param input_key_size: Key/query size of the input attention.
    :param input_value_size: Value size of the input attention (the input size of each module's cell).
    :param comm_heads: Number of heads of the communication attention.
    :param comm_key_size: Key/query size per head of the communication attention.
    :param comm_value_size: Value size per head of the communication attention.
    :param dropout: Dropout on the attention probabilities. Keep 0 with PPO: collection runs in eval
        mode and training in train mode, so dropout biases the probability ratio.
    :param selection: How the top-k selection is trained. ``"hard"`` (the paper's): it is not differentiated,
        a module's input-attention score learns only through how much of the input it reads.
        ``"straight_through"``: the same forward pass (the same actions, states and activity), and in the
        backward pass each module's update counts as if gated by its attention, so its score also learns
        whether updating the module helped (an active one whose update hurt is pushed out, an inactive one
        whose update would have helped is pulled in).
    :param dense_size: Width of a dense LSTM run beside the modules on the same input, always updated, its state
        and output after the modules' (0: none, the paper's RIM). A short, dense memory, which the modules learn
        slowly, beside a long delay, which they hold. The default (96, with 6 modules of 16: 192 wide in all, as
        wide as the paper's 6 of 32) learns the memory suite's dense tasks better than the modules alone and keeps
        the long delays. Why this default: :ref:`why-dense-size`.
    :param sticky_bonus: Hysteresis of the selection: added, for the top-k only, to the input-attention score of
        every module that was active at the previous step, so an active module stays active until another's score
        passes its own by this much (0: the paper's selection, a fresh top-k at every step). The attention itself
        is unchanged. With a bonus and a selection (``top_k < num_units``) the state also carries the last step's
        activity: ``num_units`` values (1 or 0) after the rest of each of ``h`` and ``c``, which ``hidden_size``
        counts and ``output_size`` does not, so that the rollout buffer replays the same selection in training as
        in collection. The default (0.3) learned the memory suite best of 0, 0.1 and 0.3, and without a collapse:
        on those tasks it keeps the set chosen at an episode's first step. Why this default: :ref:`why-sticky-bonus`.
    :param sticky_scale: The unit of ``sticky_bonus``: ``"absolute"``, a score difference; ``"spread"``, the
        standard deviation of the core's input-attention scores over its modules at that step (per sample), so the
        hold is the same however large the scores grow in training (on the memory suite's ablation it learned
        RepeatFirst worse than ``"absolute"``).
    """

    num_units: int = 6
    top_k: int = 4
    unit_size: int = 16
    cell: str = "lstm"
    input_key_size: int = 64
    input_value_size: int = 64
    comm_heads: int = 4
    comm_key_size: int = 32
    comm_value_size: int = 32
    dropout: float = 0.0
    selection: str = "hard"
    dense_size: int = 96
    sticky_bonus: float = 0.3
    sticky_scale: str = "absolute"
    takes_rnn_arguments: ClassVar[bool] = True

    @property
    def modules_size(self) -> int:
        """The modules' width, ``num_units * unit_size``."""
        return self.num_units * self.unit_size

    @property
    def activity_size(self) -> int:
        """Width of the last step's activity in the state: ``num_units`` with a ``sticky_bonus`` and a selection
        (``top_k < num_units``), else 0 (with every module active there is nothing to hold)."""
        return self.num_units if self.sticky_bonus > 0 and self.top_k < self.num_units else 0

    @property
    def output_size(self) -> int:
        """The core's output width, ``num_units * unit_size + dense_size``."""
        return self.modules_size + self.dense_size

    @property
    def hidden_size(self) -> int:
        """The stored state's width (each of ``h`` and ``c``): the output's, then the activity's."""
        return self.output_size + self.activity_size

    def validate(self) -> "RIMConfig":
        """
        Raise a ``ValueError`` naming the first option that is out of range, its value and what is allowed.

        :return: ``self``, checked.
        """
        for name in POSITIVE_INT_OPTIONS:
            check_positive_int(name, getattr(self, name))
        if self.top_k > self.num_units:
            raise ValueError(f"top_k={self.top_k}: must be between 1 and num_units={self.num_units}")
        if self.cell not in RIM_CELLS:
            raise ValueError(f"cell={self.cell!r}: must be one of {RIM_CELLS}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout={self.dropout!r}: must be in [0, 1)")
        if not (isinstance(self.dense_size, int) and self.dense_size >= 0):
            raise ValueError(f"dense_size={self.dense_size!r}: must be an integer >= 0")
        if self.selection not in RIM_SELECTIONS:
            raise ValueError(f"selection={self.selection!r}: must be one of {RIM_SELECTIONS}")
        if self.sticky_scale not in STICKY_SCALES:
            raise ValueError(f"sticky_scale={self.sticky_scale!r}: must be one of {STICKY_SCALES}")
        bonus = self.sticky_bonus
        if isinstance(bonus, bool) or not isinstance(bonus, (int, float)) or not 0.0 <= bonus < math.inf:
            raise ValueError(f"sticky_bonus={bonus!r}: must be a finite number >= 0 (0: no hysteresis)")
        return self

    @classmethod
    def options_for_width(cls, width: int, options: dict[str, Any]) -> dict[str, Any]:
        """
        ``lstm_hidden_size`` as the width of the modules and the dense LSTM together, ``num_units * unit_size +
        dense_size``, by one rule for whatever of ``num_units``, ``unit_size``, ``dense_size`` and ``top_k`` was not
        given (every width works when none of them is):

        - ``num_units``: 6, fewer only where 6 modules cannot fit: ``min(6, width)`` (modules at least 1 wide); with
          ``unit_size`` given, ``min(6, width // unit_size)``; with ``dense_size`` given, the largest count up to 6
          that divides ``width - dense_size``; with both, ``(width - dense_size) / unit_size``.
        - ``unit_size``: with ``dense_size`` given, ``(width - dense_size) / num_units``; else half the width over the
          modules, ``width // (2 * num_units)``, at least 1.
        - ``dense_size``: the rest.
        - ``top_k``: 4 of the 6 modules; where the rule gives fewer, two thirds of them, rounded:
          ``(2 * num_units + 1) // 3``.

        With nothing else given: from a width of 12 the modules take half of it, 6 modules of ``width // 12`` (192:
        the defaults, 6 x 16 and a dense LSTM of 96, ``top_k=4``); from 6 to 11, 6 modules of 1 and a dense LSTM of
        ``width - 6``; below 6, ``width`` modules of 1 and no dense LSTM. Examples:

        =====  =========  =========  ==========  =====  ==================================
        width  num_units  unit_size  dense_size  top_k  state width (``hidden_size``)
        =====  =========  =========  ==========  =====  ==================================
        1      1          1          0           1      1 (every module active: no flags)
        2      2          1          0           1      4
        4      4          1          0           3      8
        5      5          1          0           3      10
        8      6          1          2           4      14
        12     6          1          6           4      18
        64     6          5          34          4      70
        192    6          16         96          4      198
        =====  =========  =========  ==========  =====  ==================================

        :param width: The width asked for, a positive integer.
        :param options: The RIM options given.
        :return: ``num_units``, ``unit_size`` and ``dense_size``, and ``top_k`` where the rule gave fewer than 6
            modules and it was not given. A ``ValueError`` names the options given when they cannot hold the width
            (e.g. ``num_units=6, unit_size=16`` with ``lstm_hidden_size=5``).
        """
        given = {name: options[name] for name in ("num_units", "unit_size", "top_k") if name in options}
        for name, value in given.items():
            check_positive_int(name, value)
        dense_size = options.get("dense_size")
        if dense_size is not None and (isinstance(dense_size, bool) or not isinstance(dense_size, int) or dense_size < 0):
            raise ValueError(f"dense_size={dense_size!r}: must be an integer >= 0")
        if dense_size is not None and dense_size >= width:
            raise ValueError(
                f"dense_size={dense_size!r} with lstm_hidden_size={width!r}: must be less than it (the modules take the rest)"
            )
        num_units, unit_size = given.get("num_units"), given.get("unit_size")
        if num_units is None:
            num_units = _units_for_width(width, unit_size, dense_size)
        if unit_size is None and dense_size is not None:
            modules_width = width - dense_size
            unit_size = split_over_units(modules_width, num_units, f"lstm_hidden_size - dense_size = {modules_width}")
        elif unit_size is None:
            if num_units > width:
                raise ValueError(
                    f"lstm_hidden_size={width!r} with num_units={num_units!r}: too narrow for that many modules at least 1 "
                    f"wide; pass num_units <= {width} or a width >= {num_units}"
                )
            unit_size = max(1, width // (2 * num_units))
        modules_width = num_units * unit_size
        if dense_size is None and modules_width > width:
            raise ValueError(
                f"lstm_hidden_size={width!r} with num_units={num_units!r}, unit_size={unit_size!r}: the modules alone are "
                f"num_units * unit_size = {modules_width} wide, more than the width; pass a smaller num_units or "
                "unit_size, or leave one of them out"
            )
        if dense_size is None:
            dense_size = width - modules_width
        if modules_width + dense_size != width:
            raise ValueError(
                f"lstm_hidden_size={width!r} and num_units={num_units!r}, unit_size={unit_size!r}, "
                f"dense_size={dense_size!r}: the width is num_units * unit_size + dense_size = "
                f"{modules_width + dense_size!r}; give lstm_hidden_size or unit_size"
            )
        derived = {"num_units": num_units, "unit_size": unit_size, "dense_size": dense_size}
        if "num_units" not in given and num_units < cls.num_units:
            top_k = given.get("top_k")
            if top_k is None:
                derived["top_k"] = (2 * num_units + 1) // 3
            elif top_k > num_units:
                raise ValueError(
                    f"top_k={top_k!r} with lstm_hidden_size={width!r}: the width holds num_units={num_units} modules "
                    f"by its rule (RIMConfig.options_for_width); pass num_units >= top_k, a smaller top_k or a larger width"
                )
        return derived

    @classmethod
    def rnn_arguments(cls, num_layers: int, lstm_kwargs: dict[str, Any]) -> dict[str, Any]:
        """
        The policy's ``n_lstm_layers`` and ``lstm_kwargs`` as :class:`RIM`'s arguments: ``num_layers`` stacked RIMs,
        and ``lstm_kwargs``' ``dropout`` (on each layer's output but the last's, in training, as ``nn.LSTM``) as
        ``layer_dropout`` (the RIM's own ``dropout`` is on its attention). ``nn.LSTM``'s other arguments have no
        meaning for a RIM (``bias``, ``batch_first``, ``bidirectional``, ``proj_size``, ...): a ``ValueError`` names
        them.

        :param num_layers: The policy's ``n_lstm_layers``.
        :param lstm_kwargs: The policy's ``lstm_kwargs``.
        :return: ``num_layers`` and ``layer_dropout``.
        """
        refused = sorted(set(lstm_kwargs) - set(RIM_RNN_ARGUMENTS))
        if refused:
            raise ValueError(
                f"lstm_kwargs={lstm_kwargs!r}: {', '.join(refused)} not taken by recurrent_core='rim' (it takes "
                f"{', '.join(RIM_RNN_ARGUMENTS)}: between stacked layers); a RIM's own options go in policy_kwargs"
            )
        return {"num_layers": num_layers, "layer_dropout": lstm_kwargs.get("dropout", 0.0)}


def _units_for_width(width: int, unit_size: int | None, dense_size: int | None) -> int:
    """
    :return: the number of modules when it is not given (:meth:`RIMConfig.options_for_width`): the default, 6, or
        the most up to 6 that fit; with ``unit_size`` and ``dense_size`` both given, the count they leave.
    """
    most = RIMConfig.num_units
    if unit_size is None and dense_size is None:
        return min(most, width)
    if unit_size is None:
        return max(count for count in range(1, most + 1) if (width - dense_size) % count == 0)
    modules_width = width - (dense_size or 0)
    what = f"lstm_hidden_size={width!r}" if dense_size is None else f"lstm_hidden_size - dense_size = {modules_width}"
    if unit_size > modules_width:
        raise ValueError(
            f"unit_size={unit_size!r} with {what}: wider than the modules may be; pass unit_size <= {modules_width}"
        )
    if dense_size is None:
        return min(most, width // unit_size)
    if modules_width % unit_size:
        raise ValueError(
            f"unit_size={unit_size!r} with {what}: not a multiple of unit_size, so no number of modules fills it; "
            "leave out unit_size or dense_size"
        )
    return modules_width // unit_size


POSITIVE_INT_OPTIONS = (
    "num_units",
    "top_k",
    "unit_size",
    "input_key_size",
    "input_value_size",
    "comm_heads",
    "comm_key_size",
    "comm_value_size",
)


class RIM(nn.Module):
    """
    Recurrent Independent Mechanisms that behave like an ``nn.LSTM``: one layer, or ``num_layers`` stacked.

    Each step: every module queries the two slots [input, null] (the null key and value are zero);
    the ``top_k`` modules attending most to the input are active; every module runs its own LSTM or
    GRU cell on its attended input; active modules read from all modules through multi-head
    communication attention (residual); inactive modules keep their state exactly and receive no
    gradient from the step. The state is an ``(h, c)`` pair of ``(num_layers, batch, hidden_size)`` tensors, like
    ``nn.LSTM``'s (:attr:`RIMConfig.hidden_size`: the modules', a dense LSTM's, then the last activity's); a GRU
    cell carries ``c`` through unchanged.

    Stacked as ``nn.LSTM`` stacks its layers (the RIMs paper stacks them too): layer ``l + 1`` is a RIM of the same
    options reading layer ``l``'s output (``output_size`` wide), each layer's state is row ``l`` of the state, and
    in training ``layer_dropout`` drops out each layer's output but the last's. The first layer's parameters are
    this module's own, so a one-layer RIM's parameter names do not depend on stacking; the others' are under
    ``upper_layers``.

    ``RIM(input_size, RIMConfig(num_units=8))`` and ``RIM(input_size, num_units=8)`` are the same core.

    :param input_size: Size of the input features.
    :param config: The options (:class:`RIMConfig`; ``None``: from ``options``, else the defaults).
    :param num_layers: Number of stacked RIMs (the policy's ``n_lstm_layers``).
    :param layer_dropout: Dropout on the output of each layer but the last, in training (``nn.LSTM``'s ``dropout``,
        the policy's ``lstm_kwargs=dict(dropout=...)``), in [0, 1].
    :param options: :class:`RIMConfig`'s fields as keyword arguments, instead of ``config``.
    """

    handles_episode_starts = True  # resets inside its loop (sb3_metarim.meta_rim_ppo.policies passes it episode_starts)
    # The modules over a span as one autograd node with a hand-written backward (sb3_metarim.cores.rim_span), where
    # it applies (no attention dropout in training, the "hard" selection); False: autograd through every step, the
    # same results, for debugging. Set it on the first core of those run together (the actor's).
    span_backward = True

    def __init__(
        self,
        input_size: int,
        config: RIMConfig | None = None,
        *,
        num_layers: int = 1,
        layer_dropout: float = 0.0,
        **options: Any,
    ) -> None:
        super().__init__()
        if config is not None and not isinstance(config, RIMConfig):
            raise TypeError(f"config={config!r}: must be a RIMConfig, or give the options by keyword (RIM(8, top_k=2))")
        if config is not None and options:
            raise TypeError(f"RIM: give either config or the options {sorted(options)}, not both")
        check_positive_int("num_layers", num_layers)
        if isinstance(layer_dropout, bool) or not isinstance(layer_dropout, (int, float)) or not 0 <= layer_dropout <= 1:
            raise ValueError(f"layer_dropout={layer_dropout!r}: must be a number in [0, 1] (lstm_kwargs' dropout)")
        config = config or RIMConfig(**options)
        self.config = config
        self.num_layers = num_layers
        self.layer_dropout = layer_dropout
        self.input_size = input_size
        self.num_units = config.num_units
        self.top_k = config.top_k
        self.unit_size = config.unit_size
        self.hidden_size = config.hidden_size
        self.output_size = config.output_size
        self.sticky_bonus = config.sticky_bonus
        self.sticky_spread = config.sticky_scale == "spread"
        self.cell_type = config.cell
        self.comm_heads = config.comm_heads
        self.dropout = config.dropout
        self.straight_through = config.selection == "straight_through"
        self.input_attention = InputAttention(
            input_size, config.num_units, config.unit_size, config.input_key_size, config.input_value_size
        )
        cell_class = GroupLSTMCell if config.cell == "lstm" else GroupGRUCell
        self.cell = cell_class(config.num_units, config.input_value_size, config.unit_size)
        self.communication_attention = CommunicationAttention(
            config.num_units, config.unit_size, config.comm_heads, config.comm_key_size, config.comm_value_size
        )
        self.dense = nn.LSTM(input_size, config.dense_size) if config.dense_size else None
        self.upper_layers = nn.ModuleList(RIM(config.output_size, config) for _ in range(num_layers - 1))
        self.last_active: th.Tensor | None = None

    def span_options(self, cores: int) -> SpanOptions:
        """:return: what :func:`sb3_metarim.cores.rim_span.run_span` needs of the options, for ``cores`` cores run
        together."""
        config = self.config
        return SpanOptions(
            cores=cores,
            num_units=config.num_units,
            top_k=config.top_k,
            lstm_cell=config.cell == "lstm",
            sticky_bonus=config.sticky_bonus,
            sticky_spread=self.sticky_spread,
            heads=config.comm_heads,
            comm_key_size=config.comm_key_size,
            comm_value_size=config.comm_value_size,
        )

    @property
    def layers(self) -> list["RIM"]:
        """The stack's layers, bottom first, each a one-layer RIM: this module (the first), then ``upper_layers``."""
        return [self, *self.upper_layers]

    @classmethod
    def from_config(cls, input_size: int, config: RIMConfig) -> "RIM":
        """:return: ``RIM(input_size, config)``."""
        return cls(input_size, config)

    def forward(
        self,
        input: th.Tensor,
        state: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor | None = None,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """
        Run a sequence.

        :param input: (seq_len, batch, input_size)
        :param state: ``(h, c)``, each ``(num_layers, batch, hidden_size)``
        :param episode_starts: optional (seq_len, batch) 0/1 flags: the state (every layer's) is reset to zero
            before a step whose flag is 1.
        :return: the last layer's output (seq_len, batch, output_size) and the final ``(h, c)``.
            ``self.last_active`` holds the (seq_len, batch, num_layers * num_units) boolean activity mask, layer by
            layer (module ``i`` of layer ``l`` is column ``l * num_units + i``).
        """
        return run_rims([self], [input], [state], episode_starts)[0]

    def _step(
        self,
        key: th.Tensor,
        value: th.Tensor,
        h: th.Tensor,
        c: th.Tensor,
        weights: "StackedWeights",
        options: SpanOptions,
        dropout: float,
        previous: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        One step of ``G`` cores of this core's config at once, their ``G * N`` modules stacked core-major.

        :param key: (G, 1, batch, input_key_size) each core's input key, scaled.
        :param value: (G, 1, batch, input_value_size) each core's input value.
        :param h: (G * N, batch, unit_size) the modules' states.
        :param c: (G * N, batch, unit_size)
        :param weights: the ``G`` cores' weights stacked along the group dim.
        :param options: the selection's options for the ``G`` cores (:meth:`span_options`).
        :param dropout: dropout on the attention probabilities.
        :param previous: (G, N, batch) the last step's activity as 1/0, with a ``sticky_bonus`` (else ``None``).
        :return: the new ``h`` and ``c`` and the (G, N, batch) activity mask.
        """
        cores, key_size = key.shape[0], key.shape[-1]
        from_hidden = th.baddbmm(weights.hidden_bias, h, weights.hidden_weight)
        # split, not two slices: its backward is one cat, a slice's is zeros + copy each, then their sum.
        query, hidden_gates = from_hidden.split((key_size, from_hidden.shape[-1] - key_size), dim=-1)
        # Softmax over the two slots [input, null] with a zero null score is a sigmoid.
        scores = (query.view(cores, self.num_units, *query.shape[1:]) * key).sum(dim=-1)
        attention = th.sigmoid(scores)
        if dropout > 0.0:
            attention = F.dropout(attention, dropout)
        active = select_active(scores, previous, options)
        mask = active.view(-1, active.shape[-1], 1)

        cell_input = (attention.unsqueeze(-1) * value).flatten(0, 1)
        h_new, c_new = self.cell(cell_input, hidden_gates, h, c, weights.input_weight, weights.input_bias)
        # Inactive modules are still read by the others, but get no gradient through being read.
        h_read = th.where(mask, h_new, h_new.detach()) if th.is_grad_enabled() else h_new
        h_new = h_new + self.communication_attention(h_read, dropout, weights.communication, cores)
        h_out, c_out = th.where(mask, h_new, h), th.where(mask, c_new, c)
        if self.straight_through and th.is_grad_enabled():
            # Adds an exact zero in the forward pass; backward, d(out)/d(attention) = new - old for every module.
            gate = (attention - attention.detach()).view(mask.shape)
            h_out, c_out = h_out + gate * (h_new - h), c_out + gate * (c_new - c)
        return h_out, c_out, active


@dataclass(frozen=True)
class StackedWeights:
    """
    The step's weights of ``G`` RIM cores of one config, each stacked along the group dim (core-major: core 0's
    ``N`` modules, then core 1's, ...), so that one batched matmul serves all ``G * N`` modules.

    :param hidden_weight: (G * N, unit_size, key_size + gates) the query and the cell's hidden gates, both read
        from ``h``: one matmul per step for both.
    :param hidden_bias: (G * N, 1, key_size + gates)
    :param input_weight: (G * N, value_size, gates) the cell's input gates.
    :param input_bias: (G * N, 1, gates) their bias, or ``None`` when the hidden part carries it (LSTM).
    :param communication: the communication attention's query/key/value weight, output weight and output bias.
    """

    hidden_weight: th.Tensor
    hidden_bias: th.Tensor
    input_weight: th.Tensor
    input_bias: th.Tensor | None
    communication: tuple[th.Tensor, th.Tensor, th.Tensor]

    def tensors(self) -> tuple[th.Tensor | None, ...]:
        """:return: the weights in :func:`sb3_metarim.cores.rim_span.run_span`'s order."""
        return (self.hidden_weight, self.hidden_bias, self.input_weight, self.input_bias, *self.communication)

    @classmethod
    def of(cls, cores: "Sequence[RIM]") -> "StackedWeights":
        """
        :param cores: RIM cores of one config.
        :return: their weights, stacked (a lone core's are its parameters themselves, with no copy); gradients flow
            back to each core's own parameters.
        """
        hidden = [th.cat((core.input_attention.query.weight, core.cell.hidden_projection()[0]), dim=-1) for core in cores]
        bias = [th.cat((core.input_attention.query.bias, core.cell.hidden_projection()[1]), dim=-1) for core in cores]
        inputs = [core.cell.input_projection() for core in cores]
        input_bias = None if inputs[0][1] is None else _cat([bias for _, bias in inputs])
        communication = [core.communication_attention for core in cores]
        return cls(
            _cat(hidden),
            _cat(bias),
            _cat([weight for weight, _ in inputs]),
            input_bias,
            (
                _cat([comm.query_key_value.weight for comm in communication]),
                _cat([comm.output.weight for comm in communication]),
                _cat([comm.output.bias for comm in communication]),
            ),
        )


def fusable_rims(cores: "Sequence[nn.Module | None]", training: bool) -> bool:
    """
    :param cores: Recurrent cores.
    :param training: Whether they run in training mode.
    :return: whether :func:`run_rims` can run them in one pass with the same results as one by one: distinct
        :class:`RIM` cores (not subclasses, which may step differently) of one config and one number of layers,
        without dropout in training (one pass would draw the dropout masks in another order).
    """
    if not cores or any(type(core) is not RIM for core in cores) or len({id(core) for core in cores}) < len(cores):
        return False
    first = cores[0]
    if any(core.config != first.config or core.num_layers != first.num_layers for core in cores):
        return False
    dropout = first.config.dropout > 0.0 or any(core.layer_dropout > 0.0 and core.num_layers > 1 for core in cores)
    return not (training and dropout)


def run_rims(
    cores: "Sequence[RIM]",
    inputs: Sequence[th.Tensor],
    states: Sequence[tuple[th.Tensor, th.Tensor]],
    episode_starts: th.Tensor | None = None,
) -> list[tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]]:
    """
    Run ``G`` RIM cores of one config on their own sequences of the same shape in one loop over time, each step on
    the ``G * N`` modules at once (fewer, larger kernels than ``G`` loops: the actor and critic cores of a policy
    run together); stacked cores layer by layer, each layer of the ``G`` cores in one loop. The results are those
    of ``core(input, state, episode_starts)`` for each core; ``last_active`` is set on each core. ``RIM.forward``
    is the ``G = 1`` case.

    :param cores: RIMs of one config and one number of layers (:func:`fusable_rims`).
    :param inputs: each core's input, (seq_len, batch, input_size).
    :param states: each core's ``(h, c)``, each ``(num_layers, batch, hidden_size)``: per layer the modules', then a
        dense LSTM's, then the last step's activity (with a ``sticky_bonus``).
    :param episode_starts: optional (seq_len, batch) 0/1 flags, shared by the cores: a core's state is reset to
        zero before a step whose flag is 1.
    :return: per core, its last layer's output (seq_len, batch, output_size) and its final ``(h, c)``.
    """
    first = cores[0]
    for h, c in states:
        if h.dim() != 3 or (h.shape[0], h.shape[2]) != (first.num_layers, first.hidden_size) or c.shape != h.shape:
            # The class nn.LSTM raises for a state of the wrong shape.
            raise RuntimeError(
                f"state: h of shape {tuple(h.shape)}, c of shape {tuple(c.shape)}: this RIM takes (num_layers, batch, "
                f"hidden_size) = ({first.num_layers}, batch, {first.hidden_size}) for each"
            )
    if first.num_layers == 1:
        return _run_layer(cores, inputs, states, episode_starts)
    outputs, layer_states = list(inputs), []
    for index in range(first.num_layers):
        if index > 0:
            # nn.LSTM's dropout: on each layer's output that another layer reads, in training only.
            outputs = [
                F.dropout(output, core.layer_dropout) if core.training and core.layer_dropout > 0.0 else output
                for core, output in zip(cores, outputs, strict=True)
            ]
        layer = [core.layers[index] for core in cores]
        layer_state = [(h[index : index + 1], c[index : index + 1]) for h, c in states]
        results = _run_layer(layer, outputs, layer_state, episode_starts)
        outputs = [output for output, _ in results]
        layer_states.append([state for _, state in results])
    results = []
    for index, (core, output) in enumerate(zip(cores, outputs, strict=True)):
        core.last_active = th.cat([layer.last_active for layer in core.layers], dim=-1)
        hs, cs = zip(*(states[index] for states in layer_states), strict=True)
        results.append((output, (th.cat(hs), th.cat(cs))))
    return results


def _run_layer(
    cores: "Sequence[RIM]",
    inputs: Sequence[th.Tensor],
    states: Sequence[tuple[th.Tensor, th.Tensor]],
    episode_starts: th.Tensor | None,
) -> list[tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]]:
    """
    :func:`run_rims` for one layer of each core: this module's own modules and dense LSTM (a stacked core's upper
    layers are cores of their own).

    :param states: each core's layer's ``(h, c)``, each ``(1, batch, hidden_size)``.
    :return: per core, the layer's output and its final ``(h, c)``.
    """
    config = cores[0].config
    widths = (config.modules_size, config.dense_size, config.activity_size)
    parts = [(h.split(widths, dim=-1), c.split(widths, dim=-1)) for h, c in states]
    activities = [h[2] for h, _ in parts] if config.activity_size else None
    modules = _run_modules(cores, inputs, [(h[0], c[0]) for h, c in parts], activities, episode_starts)
    results = []
    for core, input, (h, c), (output, (module_h, module_c), activity) in zip(cores, inputs, parts, modules, strict=True):
        outputs, hs, cs = [output], [module_h], [module_c]
        if core.dense is not None:
            dense_output, (dense_h, dense_c) = _run_lstm(
                core.dense, input, (h[1].contiguous(), c[1].contiguous()), episode_starts
            )
            outputs.append(dense_output)
            hs.append(dense_h)
            cs.append(dense_c)
        if activity is not None:
            hs.append(activity)
            cs.append(activity)
        results.append((_cat(outputs, dim=-1), (_cat(hs, dim=-1), _cat(cs, dim=-1))))
    return results


def _run_modules(
    cores: "Sequence[RIM]",
    inputs: Sequence[th.Tensor],
    states: Sequence[tuple[th.Tensor, th.Tensor]],
    activities: Sequence[th.Tensor] | None,
    episode_starts: th.Tensor | None,
) -> list[tuple[th.Tensor, tuple[th.Tensor, th.Tensor], th.Tensor | None]]:
    """
    :func:`run_rims` for the modules alone.

    :param states: each core's modules' part of the state, ``(h, c)``, each ``(1, batch, num_units * unit_size)``.
    :param activities: each core's last activity, ``(1, batch, num_units)``, with a ``sticky_bonus`` (else ``None``).
    :return: per core, the modules' output, their final ``(h, c)`` and their final activity (``None`` without a
        ``sticky_bonus``) in the state's layout.
    """
    first = cores[0]
    num_cores, num_units, unit_size = len(cores), first.num_units, first.unit_size
    seq_len, batch = inputs[0].shape[:2]

    def modules_major(state: th.Tensor) -> th.Tensor:
        # (1, batch, N * d) -> (N, batch, d): inside the loop every matmul is one bmm.
        return state.reshape(batch, num_units, unit_size).transpose(0, 1)

    h = _cat([modules_major(state[0]) for state in states])
    c = _cat([modules_major(state[1]) for state in states])
    # (1, batch, N) per core -> (G, N, batch), the scores' layout.
    previous = None if activities is None else _stack([activity[0].t() for activity in activities], dim=0)
    # Each core projects its own input once per sequence; (seq_len, G, 1, batch, size) broadcasts over its modules.
    projected = [core.input_attention.project_input(input) for core, input in zip(cores, inputs, strict=True)]
    keys = _stack([key for key, _ in projected], dim=1).unsqueeze(2)
    values = _stack([value for _, value in projected], dim=1).unsqueeze(2)
    keep = None
    if episode_starts is not None and episode_starts.any():
        keep = (1.0 - episode_starts).view(seq_len, 1, batch, 1)
    weights = StackedWeights.of(cores)
    dropout = first.dropout if first.training else 0.0
    options = first.span_options(num_cores)
    if first.span_backward and dropout == 0.0 and not first.straight_through:
        output, h, c, active, previous = run_span(options, keys, values, h, c, previous, keep, weights.tensors())
    else:
        output, h, c, active, previous = _run_steps(first, options, keys, values, h, c, previous, keep, weights, dropout)
    # (seq_len, G, N, batch, d) and (seq_len, G, N, batch): split per core back into nn.LSTM's layouts.
    output = output.view(seq_len, num_cores, num_units, batch, unit_size)
    h, c = h.view(num_cores, num_units, batch, unit_size), c.view(num_cores, num_units, batch, unit_size)
    results = []
    for index, core in enumerate(cores):
        core.last_active = active[:, index].transpose(1, 2)
        core_output = output[:, index].permute(0, 2, 1, 3).reshape(seq_len, batch, num_units * unit_size)
        activity = None if previous is None else previous[index].t().unsqueeze(0)
        results.append((core_output, (_to_layer_layout(h[index]), _to_layer_layout(c[index])), activity))
    return results


def _run_steps(
    core: "RIM",
    options: SpanOptions,
    keys: th.Tensor,
    values: th.Tensor,
    h: th.Tensor,
    c: th.Tensor,
    previous: th.Tensor | None,
    keep: th.Tensor | None,
    weights: "StackedWeights",
    dropout: float,
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor | None]:
    """
    :func:`sb3_metarim.cores.rim_span.run_span`'s results (its arguments the same), step by step through
    :meth:`RIM._step` with autograd at every step: the path for attention dropout, the straight-through selection and
    ``span_backward=False``.
    """
    outputs, actives = [], []
    for t in range(keys.shape[0]):
        if keep is not None:
            h, c = h * keep[t], c * keep[t]
            previous = None if previous is None else previous * keep[t, 0, :, 0]
        h, c, active = core._step(keys[t], values[t], h, c, weights, options, dropout, previous)
        previous = None if previous is None else active.to(h.dtype)
        outputs.append(h)
        actives.append(active)
    return th.stack(outputs), h, c, th.stack(actives), previous


def _run_lstm(
    lstm: nn.LSTM, input: th.Tensor, state: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor | None
) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
    """
    ``lstm(input, state)``, its state reset to zero before each step whose ``episode_starts`` flag is 1, on the
    (seq_len, batch) layout the RIM's loop uses. Where sb3-contrib's ``_process_sequence`` steps one by one once any
    flag is set, this cuts the sequence only at the steps where some sequence starts an episode and runs each
    segment in one call (the same result; half the time over a 128-step rollout with episodes of about 20 steps).
    """
    if episode_starts is None or not episode_starts.any():
        return lstm(input, state)
    cuts = th.nonzero(episode_starts.any(dim=1)).flatten().tolist()
    bounds = [0, *(cut for cut in cuts if cut > 0), input.shape[0]]
    outputs = []
    for start, end in itertools.pairwise(bounds):
        keep = (1.0 - episode_starts[start]).view(1, -1, 1)
        output, state = lstm(input[start:end], (state[0] * keep, state[1] * keep))
        outputs.append(output)
    return th.cat(outputs), state


def _cat(tensors: Sequence[th.Tensor], dim: int = 0) -> th.Tensor:
    """``th.cat``, without the copy for a lone tensor."""
    return tensors[0] if len(tensors) == 1 else th.cat(tensors, dim=dim)


def _stack(tensors: Sequence[th.Tensor], dim: int) -> th.Tensor:
    """``th.stack``, a view for a lone tensor."""
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else th.stack(tensors, dim=dim)


class GroupLSTMCell(nn.Module):
    """
    One LSTM cell per module. Gate order: input, forget, output, candidate.

    :param num_units: Number of modules.
    :param input_size: Input size of each module.
    :param unit_size: Hidden size of each module.
    """

    def __init__(self, num_units: int, input_size: int, unit_size: int) -> None:
        super().__init__()
        self.unit_size = unit_size
        self.input_gates = GroupLinear(num_units, input_size, 4 * unit_size)
        self.hidden_gates = GroupLinear(num_units, unit_size, 4 * unit_size, bias=False)

    def hidden_projection(self) -> tuple[th.Tensor, th.Tensor]:
        """:return: weight and bias of the part computed from ``h`` (it carries the gates' bias)."""
        return self.hidden_gates.weight, self.input_gates.bias

    def input_projection(self) -> tuple[th.Tensor, None]:
        """:return: weight and bias (``None``: the hidden part carries it) of the part computed from the input."""
        return self.input_gates.weight, None

    def forward(
        self,
        x: th.Tensor,
        hidden_gates: th.Tensor,
        h: th.Tensor,
        c: th.Tensor,
        input_weight: th.Tensor,
        input_bias: None,
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        :param x: (groups, batch, input_size) each module's input.
        :param hidden_gates: ``h`` through :meth:`hidden_projection`, computed by the caller.
        :param input_weight: :meth:`input_projection`'s weight, (groups, input_size, 4 * unit_size), of one cell or
            of several stacked (:class:`StackedWeights`).
        :param input_bias: ``None``: the hidden part carries the bias (the same call as :class:`GroupGRUCell`'s).
        :return: the candidate ``(h, c)`` of every module.
        """
        gates = th.baddbmm(hidden_gates, x, input_weight)
        # split, not slices: its backward is one cat instead of zeros + copy per slice.
        sigmoid_gates, candidate = gates.split((3 * self.unit_size, self.unit_size), dim=-1)
        i, f, o = th.sigmoid(sigmoid_gates).chunk(3, dim=-1)
        c_new = th.addcmul(f * c, i, th.tanh(candidate))
        return o * th.tanh(c_new), c_new


class GroupGRUCell(nn.Module):
    """
    One GRU cell per module. The cell state ``c`` is carried through unchanged.

    :param num_units: Number of modules.
    :param input_size: Input size of each module.
    :param unit_size: Hidden size of each module.
    """

    def __init__(self, num_units: int, input_size: int, unit_size: int) -> None:
        super().__init__()
        self.unit_size = unit_size
        self.input_gates = GroupLinear(num_units, input_size, 3 * unit_size)
        self.hidden_gates = GroupLinear(num_units, unit_size, 3 * unit_size)

    def hidden_projection(self) -> tuple[th.Tensor, th.Tensor]:
        """:return: weight and bias of the part computed from ``h``."""
        return self.hidden_gates.weight, self.hidden_gates.bias

    def input_projection(self) -> tuple[th.Tensor, th.Tensor]:
        """:return: weight and bias of the part computed from the input."""
        return self.input_gates.weight, self.input_gates.bias

    def forward(
        self,
        x: th.Tensor,
        hidden_gates: th.Tensor,
        h: th.Tensor,
        c: th.Tensor,
        input_weight: th.Tensor,
        input_bias: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        :param x: (groups, batch, input_size) each module's input.
        :param hidden_gates: ``h`` through :meth:`hidden_projection`, computed by the caller.
        :param input_weight: :meth:`input_projection`'s weight, (groups, input_size, 3 * unit_size), of one cell or
            of several stacked (:class:`StackedWeights`).
        :param input_bias: its bias, (groups, 1, 3 * unit_size).
        :return: the candidate ``(h, c)`` of every module.
        """
        input_gates = th.baddbmm(input_bias, x, input_weight)
        # split, not slices: its backward is one cat instead of zeros + copy per slice.
        input_rz, input_n = input_gates.split((2 * self.unit_size, self.unit_size), dim=-1)
        hidden_rz, hidden_n = hidden_gates.split((2 * self.unit_size, self.unit_size), dim=-1)
        r, z = th.sigmoid(input_rz + hidden_rz).chunk(2, dim=-1)
        # The reset gate scales the hidden part of the candidate only, as in nn.GRU.
        n = th.tanh(th.addcmul(input_n, r, hidden_n))
        return th.addcmul(n, z, h - n), c


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
        """:return: keys, already scaled by 1/sqrt(key_size), and values of the whole input sequence."""
        keys, values = self.key_value(input).split((self.key_size, self.value_size), dim=-1)
        return keys / math.sqrt(self.key_size), values


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

    def forward(
        self,
        h: th.Tensor,
        dropout: float = 0.0,
        weights: tuple[th.Tensor, th.Tensor, th.Tensor] | None = None,
        cores: int = 1,
    ) -> th.Tensor:
        """
        :param h: (cores * num_units, batch, unit_size) module states, core-major.
        :param dropout: dropout probability on the attention weights.
        :param weights: query/key/value weight, output weight and output bias of ``cores`` attentions stacked along
            the group dim (``None``: this attention's own).
        :param cores: the number of cores in ``h``; each core's modules attend among themselves.
        :return: (cores * num_units, batch, unit_size) what each module reads.
        """
        if weights is None:
            weights = (self.query_key_value.weight, self.output.weight, self.output.bias)
        qkv_weight, output_weight, output_bias = weights
        groups, batch = h.shape[:2]
        num_units = groups // cores
        # (cores, num_units, batch, heads, qkv) -> (cores * batch, heads, num_units, qkv): attention over each core's
        # modules, the core folded into the batch dim. SDPA beats explicit matmuls + softmax on CPU at this size (2x
        # with backward), but only on 4-D inputs: on 5-D ones it takes its slow generic path (2x slower again).
        qkv = th.bmm(h, qkv_weight).view(cores, num_units, batch, self.heads, -1).permute(0, 2, 3, 1, 4)
        qkv = qkv.reshape(cores * batch, self.heads, num_units, -1)
        query, key, value = qkv.split((self.key_size, self.key_size, self.value_size), dim=-1)
        context = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout)
        context = context.view(cores, batch, self.heads, num_units, self.value_size).permute(0, 3, 1, 2, 4)
        context = context.reshape(groups, batch, self.heads * self.value_size)
        return th.baddbmm(output_bias, context, output_weight)


def _to_layer_layout(state: th.Tensor) -> th.Tensor:
    """(num_units, batch, unit_size) -> nn.LSTM's (1, batch, num_units * unit_size)."""
    return state.transpose(0, 1).reshape(1, state.shape[1], -1)


class ModuleActivity:
    """Counts how often each RIM module of the actor core is active over the valid training steps."""

    def __init__(self) -> None:
        self.active_steps: th.Tensor | None = None
        self.steps = 0

    def add(self, core: nn.Module, mask: th.Tensor) -> None:
        """
        :param core: the actor's core after a forward pass (ignored unless it is a RIM).
        :param mask: (n_seq * max_length,) valid (not padding) steps, in sequence-major order.
        """
        if not isinstance(core, RIM) or core.last_active is None:
            return
        active = active_steps(core, mask)
        counts = active.sum(dim=0)
        self.active_steps = counts if self.active_steps is None else self.active_steps + counts
        self.steps += active.shape[0]

    def rates(self) -> list[float]:
        """:return: per module (a stacked core's layer by layer), the fraction of steps it was active (empty without a
        RIM)."""
        if self.active_steps is None:
            return []
        return (self.active_steps.float() / max(self.steps, 1)).tolist()


def active_steps(core: RIM, mask: th.Tensor) -> th.Tensor:
    """
    :param core: A RIM after a forward pass on padded sequences.
    :param mask: (n_seq * max_length,) valid (not padding) steps, in sequence-major order.
    :return: (valid steps, num_layers * num_units) which modules were active at each valid step, layer by layer.
    """
    return core.last_active.transpose(0, 1).reshape(-1, core.last_active.shape[-1])[mask]
