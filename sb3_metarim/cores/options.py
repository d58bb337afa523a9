"""What the options dataclass of every core shares (``LSTMConfig``, ``RIMConfig``, ``MetODSConfig``)."""

from dataclasses import asdict, fields
from typing import Any, ClassVar

from sb3_metarim.common.validation import check_positive_int


class CoreOptions:
    """
    Base of a core's frozen options dataclass. A subclass adds its fields, ``validate()`` and ``hidden_size`` (the
    width of each of ``h`` and ``c`` in the stored state); ``output_size`` (what the ``mlp_extractor`` reads)
    defaults to it. The options are checked when the dataclass is made: a bad value is a ``ValueError`` naming the
    option, its value and what is allowed.

    ``takes_rnn_arguments``: whether the core takes the policy's ``n_lstm_layers`` and ``lstm_kwargs`` as
    ``nn.LSTM`` does (its builder gets them as :meth:`rnn_arguments` says); other cores refuse them.
    """

    hidden_size: int
    takes_rnn_arguments: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "CoreOptions":
        """Raise a ``ValueError`` naming the first option out of range. :return: ``self``."""
        return self

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """:return: the names of the options, in declaration order."""
        return tuple(option.name for option in fields(cls))

    @property
    def output_size(self) -> int:
        """Width of the core's output: by default its state's, ``hidden_size``."""
        return self.hidden_size

    def as_dict(self) -> dict[str, Any]:
        """:return: the options as keyword arguments (``type(config)(**config.as_dict()) == config``)."""
        return asdict(self)

    @classmethod
    def rnn_arguments(cls, num_layers: int, lstm_kwargs: dict[str, Any]) -> dict[str, Any]:
        """
        The policy's ``n_lstm_layers`` and ``lstm_kwargs`` as the builder's keyword arguments, for a core that takes
        them (``takes_rnn_arguments``); the policy checks them with this before it builds anything. A subclass
        renames what its own options also name, and refuses with a ``ValueError`` naming them the arguments that
        have no meaning for it.

        :param num_layers: The policy's ``n_lstm_layers``.
        :param lstm_kwargs: The policy's ``lstm_kwargs``.
        :return: ``num_layers`` and ``lstm_kwargs``, as ``nn.LSTM`` takes them (this base).
        """
        return {"num_layers": num_layers, **lstm_kwargs}

    @classmethod
    def options_for_width(cls, width: int, options: dict[str, Any]) -> dict[str, Any] | None:
        """
        ``RecurrentPPO``'s ``lstm_hidden_size`` as this core's options (a ``ValueError`` naming them when they
        disagree with it).

        :param width: The width asked for, a positive integer.
        :param options: The core options given.
        :return: the options that set the width; ``None`` (this base): the core takes its width from its options
            alone.
        """
        return None


def split_over_units(width: int, num_units: object, what: str) -> int:
    """
    :param width: A width to share equally among ``num_units`` modules.
    :param num_units: The number of modules.
    :param what: How the message names ``width`` (e.g. ``"lstm_hidden_size=192"``).
    :return: each module's width; a ``ValueError`` naming both when ``num_units`` does not divide ``width``.
    """
    check_positive_int("num_units", num_units)
    if width < num_units or width % num_units:
        divisors = [n for n in range(1, min(width, 16) + 1) if width % n == 0]
        raise ValueError(
            f"{what} is not divisible by num_units={num_units!r}: each module gets an equal share; pass num_units "
            f"dividing it (e.g. {divisors}) or unit_size instead"
        )
    return width // num_units
