"""The ``"lstm"`` core: sb3-contrib's own ``nn.LSTM``, sized as a RIM is, for the meta-LSTM baseline and ablations."""

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.cores.options import CoreOptions, split_over_units

# The slow set of fast/slow training with an LSTM core: the value function (``value_net`` and the critic's core),
# the meta-LSTM split of Madan et al. 2021.
LSTM_SLOW_PARAMETERS = ("value_net", "lstm_critic")


@dataclass(frozen=True)
class LSTMConfig(CoreOptions):
    """
    The options of the ``"lstm"`` core (an ``nn.LSTM``, for ablations beside a RIM): its width as the RIM's names
    say it, ``num_units * unit_size``, so that an ablation sets the same width the same way; ``lstm_hidden_size``
    sets it directly. The default, 6 x 32 = 192, is the paper's RIM width (the RIM's own default, 6 modules of 16
    and a dense LSTM of 96, is 192 wide as well).

    :param num_units: How many RIM modules the width stands for.
    :param unit_size: The width of each.
    """

    num_units: int = 6
    unit_size: int = 32
    takes_rnn_arguments: ClassVar[bool] = True

    @property
    def hidden_size(self) -> int:
        """The ``nn.LSTM``'s width, ``num_units * unit_size``."""
        return self.num_units * self.unit_size

    def validate(self) -> "LSTMConfig":
        """Raise a ``ValueError`` naming an option that is not a positive integer. :return: ``self``, checked."""
        check_positive_int("num_units", self.num_units)
        check_positive_int("unit_size", self.unit_size)
        return self

    @classmethod
    def options_for_width(cls, width: int, options: dict[str, Any]) -> dict[str, Any]:
        """
        ``lstm_hidden_size`` as the ``nn.LSTM``'s width: ``num_units=1, unit_size=width``, or split over
        ``num_units`` when that is given; with ``unit_size`` given, ``num_units * unit_size`` must equal it.

        :param width: The width asked for, a positive integer.
        :param options: The options given.
        :return: ``num_units`` and ``unit_size``.
        """
        if "unit_size" in options:
            num_units, unit_size = options.get("num_units", cls.num_units), options["unit_size"]
            check_positive_int("num_units", num_units)
            check_positive_int("unit_size", unit_size)
            if num_units * unit_size != width:
                raise ValueError(
                    f"lstm_hidden_size={width!r} and num_units={num_units!r}, unit_size={unit_size!r}: the width is "
                    f"num_units * unit_size = {num_units * unit_size!r}; give lstm_hidden_size or unit_size"
                )
            return {"num_units": num_units, "unit_size": unit_size}
        num_units = options.get("num_units", 1)
        return {"num_units": num_units, "unit_size": split_over_units(width, num_units, f"lstm_hidden_size={width!r}")}


def build_lstm(input_size: int, hidden_size: int, num_layers: int = 1, **lstm_kwargs: Any) -> nn.LSTM:
    """:return: ``nn.LSTM(input_size, hidden_size, num_layers=num_layers, **lstm_kwargs)``, as sb3-contrib builds it."""
    return nn.LSTM(input_size, hidden_size, num_layers=num_layers, **lstm_kwargs)
