"""
MetODS (Chalvidal, Serre, VanRullen 2022, "Meta-Reinforcement Learning with Self-Modifying Networks") as a
drop-in for ``nn.LSTM`` in sb3-contrib: a dynamic layer whose synaptic matrix ``W`` (N x N) is the only memory,
rewritten at every step by a learned Hebbian rule.

Each step, from ``v(0) = tanh(input_projection(x_t))`` and ``W(0) = W_{t-1}``, ``S`` recursive read/write
iterations, s = 1..S (``l`` runs over 0..s-1):

- read: ``v(s) = sum_l kappa_s(l) v(l) + kappa_s(s) tanh(W(s-1) v(s-1))``;
- write: ``W(s) = sum_l beta_s(l) W(l) + beta_s(s) alpha ⊙ (v(s-1) ⊗ u(s-1))``, ``u = v`` (or ``P v`` with
  ``write_projection=True``, the paper's linear projection of the right-hand vector);

the output is ``v(S)`` (N wide) and the next state ``W_t = W(S)``.

Stability (no NaN or overflow over long trials): ``v(0)`` is bounded by its ``tanh`` and the read by its own, so
every ``v(s)`` is bounded by the kappas, whatever the input's scale; the betas of each iteration are a softmax
(non-negative, summing to 1), so ``W(s)`` is a convex combination of earlier matrices and of one bounded write.
Hence ``max|W_t| <= max(max|W_0|, max over steps of max|write|)``: ``W`` cannot grow with the trial's length, and
the weight left on ``W_{t-1}`` (below 1) is a learned decay.

State layout (what sb3-contrib's rollout buffer stores, ``(h, c)`` each ``(1, batch, hidden_size)``): the offset
``D = W - W0`` (``W0`` the learned initial matrix, else zero), flattened row-major (``D[i, j]`` at ``i * N + j``),
its first ``ceil(N^2 / 2)`` values in ``h`` and the rest in ``c`` (a zero pad when N is odd). So
``hidden_size = ceil(N^2 / 2)`` and the output width (``output_size``, what the policy's ``mlp_extractor``
reads) is ``N``. Storing the offset makes the zero state that sb3-contrib starts from (and writes at episode
starts on its own path, and ``predict(obs)`` without a state uses) exactly ``W0``. A rollout buffer stores the
actor's and the critic's ``(h, c)``: ``4 * ceil(N^2 / 2) * 4`` bytes per step per env (float32), about ``8 N^2``.
"""

import math
from dataclasses import dataclass
from typing import Any

import torch as th
from torch import nn

from sb3_metarim.cores.options import CoreOptions

W0_MODES = ("zero", "learned", "sampled")
PLASTICITY_MODES = ("synapse", "neuron", "scalar")
NUM_NEURONS_RANGE = (4, 256)
RECURSIONS_RANGE = (1, 4)
# Patterns (re.search over the policy's parameter names) selecting the plasticity parameters: a slow set for
# MetODSPPO(meta=True).
METODS_SLOW_PARAMETERS = (r"lstm_(actor|critic)\.(alpha|kappa|beta)$",)


@dataclass(frozen=True)
class MetODSConfig(CoreOptions):
    """
    The options of a :class:`MetODS` core, in one place: their defaults, their meaning and their checks. The
    policies take the same names in ``policy_kwargs`` with ``recurrent_core="metods"``.

    :param num_neurons: N, the dynamic layer's size (the output width); the state is N x N. 4..256; default 32,
        above the paper's 20 neurons for Harlow, a 4 KiB matrix per env.
    :param recursions: S, read/write iterations per step, 1..4 (1: a Hebbian update with per-synapse
        plasticity). Default 2: the paper's ablation finds depth helps, and 2 is the least depth that recurses
        (each step costs S matrix-vector products).
    :param w0: The initial matrix at each episode start: ``"zero"``, ``"learned"`` (a parameter), or ``"sampled"``
        (zero-mean Gaussian of std ``w0_std``, drawn at each episode start the core sees; a zero state given
        without an episode-start flag, as ``predict(obs)`` without a state, is its mean, zero). With PPO a
        sampled ``W0`` is drawn again when a training epoch replays an episode start, like dropout.
    :param w0_std: Standard deviation of a sampled ``W0``, > 0.
    :param plasticity: ``alpha``'s shape: ``"synapse"`` (N x N, the paper's), ``"neuron"`` (one per
        postsynaptic neuron) or ``"scalar"`` (one), for the paper's ablation.
    :param write_projection: Write ``alpha ⊙ (v ⊗ P v)`` with a learned N x N ``P`` (the paper reports it helps).
    :param retention_init: Initial weight kept on the previous matrix per env step, in (0, 1): each of the S
        iterations starts keeping ``retention_init ** (1 / S)`` of ``W(s-1)`` (then learned).
    """

    num_neurons: int = 32
    recursions: int = 2
    w0: str = "zero"
    w0_std: float = 0.1
    plasticity: str = "synapse"
    write_projection: bool = False
    retention_init: float = 0.95

    @property
    def hidden_size(self) -> int:
        """Width of each of ``h`` and ``c`` in the stored state: ``ceil(N^2 / 2)``."""
        return (self.num_neurons**2 + 1) // 2

    @property
    def output_size(self) -> int:
        """Width of the core's output (what the ``mlp_extractor`` reads): N."""
        return self.num_neurons

    def validate(self) -> "MetODSConfig":
        """
        Raise a ``ValueError`` naming the first option that is out of range, its value and what is allowed.

        :return: ``self``, checked.
        """
        for name, (low, high) in (("num_neurons", NUM_NEURONS_RANGE), ("recursions", RECURSIONS_RANGE)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name}={value!r}: must be an integer in {low}..{high}")
        if self.w0 not in W0_MODES:
            raise ValueError(f"w0={self.w0!r}: must be one of {W0_MODES}")
        if not _is_real(self.w0_std) or not 0.0 < self.w0_std <= 10.0:
            raise ValueError(f"w0_std={self.w0_std!r}: must be a number in (0, 10]")
        if self.plasticity not in PLASTICITY_MODES:
            raise ValueError(f"plasticity={self.plasticity!r}: must be one of {PLASTICITY_MODES}")
        if not isinstance(self.write_projection, bool):
            raise ValueError(f"write_projection={self.write_projection!r}: must be True or False")
        if not _is_real(self.retention_init) or not 0.0 < self.retention_init < 1.0:
            raise ValueError(f"retention_init={self.retention_init!r}: must be a number in (0, 1)")
        return self

    @classmethod
    def options_for_width(cls, width: int, options: dict[str, Any]) -> dict[str, Any]:
        """
        ``lstm_hidden_size`` as ``num_neurons`` (N, the output width the ``mlp_extractor`` reads, as an LSTM's
        ``hidden_size``; the stored state is ``ceil(N^2 / 2)`` wide); given both, they must agree.

        :param width: The width asked for, a positive integer.
        :param options: The MetODS options given.
        :return: ``num_neurons``.
        """
        neurons = options.get("num_neurons", width)
        if neurons != width:
            raise ValueError(
                f"lstm_hidden_size={width!r} and num_neurons={neurons!r}: both set a MetODS core's width (its N); give one"
            )
        return {"num_neurons": width}


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MetODS(nn.Module):
    """
    A MetODS dynamic layer that behaves like a one-layer ``nn.LSTM`` for sb3-contrib (see the module's docstring
    for the equations, the stability argument and the state layout). It resets ``W`` to ``W0`` inside its loop at
    the steps flagged by ``episode_starts``.

    ``MetODS(input_size, MetODSConfig(num_neurons=20))`` and ``MetODS(input_size, num_neurons=20)`` are the same.

    Parameters: ``input_projection`` (f's last layer, to N), ``alpha`` (plasticity), ``kappa`` (S x (S+1) read
    mixing, entry ``[s-1, l]`` is ``kappa_s(l)``), ``beta`` (S x (S+1) logits, softmax over ``l <= s`` gives
    ``beta_s(l)``), and with the options ``write_projection`` (P) and ``w0`` (``"learned"``).

    :param input_size: Size of the input features.
    :param config: The options (:class:`MetODSConfig`; ``None``: from ``options``, else the defaults).
    :param options: :class:`MetODSConfig`'s fields as keyword arguments, instead of ``config``.
    """

    num_layers = 1
    handles_episode_starts = True

    def __init__(self, input_size: int, config: MetODSConfig | None = None, **options: Any) -> None:
        super().__init__()
        if config is not None and not isinstance(config, MetODSConfig):
            raise TypeError(
                f"config={config!r}: must be a MetODSConfig, or give the options by keyword (MetODS(8, num_neurons=20))"
            )
        if config is not None and options:
            raise TypeError(f"MetODS: give either config or the options {sorted(options)}, not both")
        config = config or MetODSConfig(**options)
        self.config = config
        n, s = config.num_neurons, config.recursions
        self.input_size = input_size
        self.num_neurons = n
        self.recursions = s
        self.hidden_size = config.hidden_size
        self.output_size = config.output_size
        self.input_projection = nn.Linear(input_size, n)
        alpha_shape = {"synapse": (n, n), "neuron": (n, 1), "scalar": (1, 1)}[config.plasticity]
        bound = 1.0 / math.sqrt(n)
        self.alpha = nn.Parameter(th.empty(alpha_shape).uniform_(-bound, bound))
        self.write_projection = nn.Linear(n, n, bias=False) if config.write_projection else None
        # kappa_s: half on the previous vector (skip), half on the read; the older vectors start at 0.
        kappa = th.zeros(s, s + 1)
        beta = th.full((s, s + 1), math.log(1e-3))
        keep = config.retention_init ** (1.0 / s)
        for index in range(s):
            kappa[index, index : index + 2] = 0.5
            beta[index, index] = math.log(keep)
            beta[index, index + 1] = math.log(1.0 - keep)
        self.kappa = nn.Parameter(kappa)
        self.beta = nn.Parameter(beta)
        # l <= s only: entries [s-1, l > s] are unused (masked to -inf before the softmax).
        self.register_buffer("beta_mask", th.ones(s, s + 1, dtype=th.bool).tril(diagonal=1), persistent=False)
        self.w0 = nn.Parameter(th.zeros(n, n)) if config.w0 == "learned" else None

    def beta_weights(self) -> th.Tensor:
        """:return: (S, S+1) the betas, row ``s-1`` a softmax over ``l = 0..s`` (zero beyond)."""
        return th.softmax(self.beta.masked_fill(~self.beta_mask, float("-inf")), dim=-1)

    def initial_weights(self, batch: int, device: th.device, dtype: th.dtype) -> th.Tensor:
        """:return: (batch, N, N) the base ``W0`` the state is an offset from (zero unless ``w0="learned"``)."""
        if self.w0 is None:
            return th.zeros(1, self.num_neurons, self.num_neurons, device=device, dtype=dtype).expand(batch, -1, -1)
        return self.w0.unsqueeze(0).expand(batch, -1, -1)

    def state_to_weights(self, state: tuple[th.Tensor, th.Tensor]) -> th.Tensor:
        """:return: (batch, N, N) ``W`` from the stored ``(h, c)`` (``W0`` plus the stored offset)."""
        h, c = state
        batch = h.shape[1]
        flat = th.cat((h[0], c[0]), dim=-1)[:, : self.num_neurons**2]
        offset = flat.reshape(batch, self.num_neurons, self.num_neurons)
        return offset + self.initial_weights(batch, h.device, h.dtype)

    def weights_to_state(self, weights: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """:return: the stored ``(h, c)``, each ``(1, batch, hidden_size)``, of ``W`` (batch, N, N)."""
        batch = weights.shape[0]
        flat = (weights - self.initial_weights(batch, weights.device, weights.dtype)).reshape(batch, -1)
        pad = 2 * self.hidden_size - flat.shape[1]
        if pad:
            flat = th.nn.functional.pad(flat, (0, pad))
        h, c = flat.split(self.hidden_size, dim=-1)
        return h.unsqueeze(0), c.unsqueeze(0)

    def forward(
        self,
        input: th.Tensor,
        state: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor | None = None,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """
        Run a sequence.

        :param input: (seq_len, batch, input_size)
        :param state: ``(h, c)``, each ``(1, batch, hidden_size)`` (layout: see the module's docstring).
        :param episode_starts: optional (seq_len, batch) 0/1 flags: ``W`` is reset to ``W0`` before a step whose
            flag is 1.
        :return: output (seq_len, batch, N) and the final ``(h, c)``.
        """
        seq_len, batch = input.shape[:2]
        weights = self.state_to_weights(state)
        v0_all = th.tanh(self.input_projection(input))
        starts = None
        if episode_starts is not None and episode_starts.any():
            starts = episode_starts.to(input.dtype).view(seq_len, batch, 1, 1)
        kappa, beta = self.kappa, self.beta_weights()
        outputs = []
        for t in range(seq_len):
            if starts is not None:
                weights = th.lerp(weights, self._reset_weights(batch, input), starts[t])
            output, weights = self._step(v0_all[t], weights, kappa, beta)
            outputs.append(output)
        return th.stack(outputs), self.weights_to_state(weights)

    def _reset_weights(self, batch: int, input: th.Tensor) -> th.Tensor:
        base = self.initial_weights(batch, input.device, input.dtype)
        if self.config.w0 != "sampled":
            return base
        noise = th.randn(batch, self.num_neurons, self.num_neurons, device=input.device, dtype=input.dtype)
        return base + self.config.w0_std * noise

    def _step(self, v0: th.Tensor, weights: th.Tensor, kappa: th.Tensor, beta: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        vectors, matrices = [v0], [weights]
        for s in range(1, self.recursions + 1):
            v_prev, w_prev = vectors[-1], matrices[-1]
            read = th.tanh(th.bmm(w_prev, v_prev.unsqueeze(-1)).squeeze(-1))
            right = v_prev if self.write_projection is None else self.write_projection(v_prev)
            write = self.alpha * (v_prev.unsqueeze(-1) * right.unsqueeze(-2))
            k, b = kappa[s - 1], beta[s - 1]
            v_new = k[s] * read
            w_new = b[s] * write
            for index in range(s):
                v_new = v_new + k[index] * vectors[index]
                w_new = w_new + b[index] * matrices[index]
            vectors.append(v_new)
            matrices.append(w_new)
        return vectors[-1], matrices[-1]
