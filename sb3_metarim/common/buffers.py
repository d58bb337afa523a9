"""Recurrent rollout buffers that can also cut the stored sequences into short spans."""

from collections.abc import Callable, Generator, Iterator

import numpy as np
import torch as th
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples

_STEP_ARRAYS = ("actions", "values", "log_probs", "advantages", "returns", "episode_starts")
_STATE_ARRAYS = ("hidden_states_pi", "cell_states_pi", "hidden_states_vf", "cell_states_vf")


class SpanSamplingMixin:
    """
    Adds ``span`` to ``get()`` of sb3-contrib's recurrent rollout buffers.

    With ``span=None`` sampling is exactly ``RecurrentPPO``'s. With ``span=L`` every env's stream
    of ``n_steps`` is cut into blocks of at most ``L`` steps, the blocks are shuffled and grouped
    into minibatches of ``max(1, batch_size // L)`` whole blocks. Each block starts from the hidden
    state stored at its first step, so the gradient flows through at most ``L`` steps (truncated
    backprop), and the padded minibatch is at most ``L`` steps long. ``span=n_steps`` gives each env's
    full rollout as one sequence (cut only at episode starts).
    """

    def _flatten_for_sampling(self) -> None:
        if self.generator_ready:
            return
        for name in _STATE_ARRAYS:
            # (n_steps, n_layers, n_envs, hidden) -> (n_steps, n_envs, n_layers, hidden)
            self.__dict__[name] = self.__dict__[name].swapaxes(1, 2)
        if isinstance(self.observations, dict):
            self.observations = {key: self.swap_and_flatten(obs) for key, obs in self.observations.items()}
        else:
            self.observations = self.swap_and_flatten(self.observations)
        for name in _STEP_ARRAYS + _STATE_ARRAYS:
            self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
        self.generator_ready = True

    def get(
        self, batch_size: int | None = None, span: int | None = None
    ) -> Generator[RecurrentRolloutBufferSamples, None, None]:
        """
        :param batch_size: Minibatch size in steps (``None``: the whole buffer).
        :param span: Maximum sequence length (``None``: ``RecurrentPPO``'s sampling).
        """
        for batch_inds, sequence_starts in self._minibatches(batch_size, span, shuffle=True):
            yield self._get_samples(batch_inds, sequence_starts)

    def refresh_log_probs(
        self, log_prob_fn: Callable[[RecurrentRolloutBufferSamples], th.Tensor], span: int, batch_size: int | None = None
    ) -> None:
        """
        Replace the stored log-probabilities of the collected actions by ``log_prob_fn``'s, so that a following
        PPO phase clips its ratio (and measures its KL) around the current policy rather than the collecting one.

        :param log_prob_fn: Padded samples -> log-probability of their actions, one per padded step.
        :param span: Sequence length the new log-probabilities are computed on (as the phase will sample).
        :param batch_size: Steps per forward pass (``None``: the whole buffer at once).
        """
        for batch_inds, sequence_starts in self._minibatches(batch_size, span, shuffle=False):
            samples = self._get_samples(batch_inds, sequence_starts)
            log_prob = log_prob_fn(samples)[samples.mask > 1e-8]
            self.log_probs[batch_inds] = log_prob.cpu().numpy().reshape(self.log_probs[batch_inds].shape)

    def _minibatches(self, batch_size: int | None, span: int | None, shuffle: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:return: per minibatch, its flat indices and the flags of the sequence starts (for ``_get_samples``)."""
        assert self.full, "Rollout buffer must be full before sampling from it"
        self._flatten_for_sampling()
        total = self.buffer_size * self.n_envs
        batch_size = batch_size or total
        sequence_starts = np.zeros((self.buffer_size, self.n_envs))
        if span is None:
            sequence_starts[0] = 1.0
            # RecurrentPPO's shuffle: keep the order, rotate by a random offset.
            split = np.random.randint(total) if shuffle else 0
            indices = np.concatenate((np.arange(split, total), np.arange(split)))
            batches = [indices[start : start + batch_size] for start in range(0, total, batch_size)]
        else:
            span = min(span, self.buffer_size)
            sequence_starts[::span] = 1.0
            blocks = _blocks(self.buffer_size, self.n_envs, span)
            order = np.random.permutation(len(blocks)) if shuffle else np.arange(len(blocks))
            per_batch = max(1, batch_size // span)
            batches = [
                np.concatenate([blocks[i] for i in order[start : start + per_batch]])
                for start in range(0, len(blocks), per_batch)
            ]
        sequence_starts = self.swap_and_flatten(sequence_starts)
        for batch_inds in batches:
            yield batch_inds, sequence_starts


def _blocks(n_steps: int, n_envs: int, span: int) -> list[np.ndarray]:
    """Flat (env-major) indices of each env's consecutive blocks of ``span`` steps."""
    return [
        env * n_steps + np.arange(start, min(start + span, n_steps))
        for env in range(n_envs)
        for start in range(0, n_steps, span)
    ]


class SpanSamplingRolloutBuffer(SpanSamplingMixin, RecurrentRolloutBuffer):
    """``RecurrentRolloutBuffer`` whose ``get()`` takes a ``span`` (see :class:`SpanSamplingMixin`)."""


class SpanSamplingDictRolloutBuffer(SpanSamplingMixin, RecurrentDictRolloutBuffer):
    """``RecurrentDictRolloutBuffer`` whose ``get()`` takes a ``span`` (see :class:`SpanSamplingMixin`)."""
