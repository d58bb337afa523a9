"""
The ``"gru"`` core: PyTorch's ``nn.GRU`` where sb3-contrib puts its ``nn.LSTM``, stacked by ``n_lstm_layers`` and
configured by ``lstm_kwargs`` as ``RecurrentPPO``'s LSTM is. POPGym (Morad et al. 2023) found the GRU the strongest
of the 13 memory models it compared; a GRU has no cell state, so it is cheaper than an LSTM of the same width.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import torch as th
from torch import nn

from sb3_metarim.cores.lstm import LSTMConfig

# nn.GRU's arguments that keep the (seq_len, batch, hidden_size) layout sb3-contrib stores and reads.
GRU_ARGUMENTS = ("bias", "dropout")


@dataclass(frozen=True)
class GRUConfig(LSTMConfig):
    """
    The options of the ``"gru"`` core: its width as :class:`~sb3_metarim.cores.lstm.LSTMConfig` says it,
    ``num_units * unit_size`` (192 by default), or ``lstm_hidden_size``. ``n_lstm_layers`` stacks GRUs and
    ``lstm_kwargs`` passes ``nn.GRU`` its ``bias`` and ``dropout`` (between layers).

    :param num_units: How many RIM modules the width stands for.
    :param unit_size: The width of each.
    """

    takes_rnn_arguments: ClassVar[bool] = True

    @classmethod
    def rnn_arguments(cls, num_layers: int, lstm_kwargs: dict[str, Any]) -> dict[str, Any]:
        """
        :param num_layers: The policy's ``n_lstm_layers``.
        :param lstm_kwargs: The policy's ``lstm_kwargs``: ``nn.GRU``'s ``bias`` and ``dropout``; the others (e.g.
            ``batch_first``, ``bidirectional``) change the layout sb3-contrib stores, a ``ValueError`` naming them.
        :return: ``nn.GRU``'s ``num_layers`` and those arguments.
        """
        unknown = sorted(set(lstm_kwargs) - set(GRU_ARGUMENTS))
        if unknown:
            raise ValueError(
                f"lstm_kwargs={lstm_kwargs!r}: {', '.join(unknown)} not taken by recurrent_core='gru' "
                f"(it takes {', '.join(GRU_ARGUMENTS)}: the others change the layout sb3-contrib stores)"
            )
        return {"num_layers": num_layers, **lstm_kwargs}


class GRU(nn.GRU):
    """
    ``nn.GRU`` behind ``nn.LSTM``'s interface, as sb3-contrib calls its core: ``core(input, (h, c))`` returns the
    output and ``(h_n, c)``. The stored state keeps the LSTM's two tensors; a GRU has no cell state, so ``c`` is
    passed through unchanged (zeros from the first step on).
    """

    def forward(  # type: ignore[override]
        self, features: th.Tensor, states: tuple[th.Tensor, th.Tensor]
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        hidden, cell = states
        output, hidden = super().forward(features, hidden.contiguous())
        return output, (hidden, cell)


def build_gru(input_size: int, num_units: int, unit_size: int, num_layers: int = 1, **gru_kwargs: Any) -> GRU:
    """
    :param input_size: Size of the input features.
    :param num_units: With ``unit_size``, the width: ``num_units * unit_size``.
    :param unit_size: See ``num_units``.
    :param num_layers: Stacked GRUs (the policy's ``n_lstm_layers``).
    :param gru_kwargs: ``nn.GRU``'s other arguments (:meth:`GRUConfig.rnn_arguments` checks the policy's).
    :return: the core.
    """
    return GRU(input_size, num_units * unit_size, num_layers=num_layers, **gru_kwargs)
