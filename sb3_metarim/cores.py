"""
Recurrent cores by name: what a policy runs where sb3-contrib puts its ``nn.LSTM``, chosen by the policy's
``recurrent_core`` argument.

A core is an ``nn.Module`` that behaves like ``nn.LSTM`` for sb3-contrib: ``core(input, (h, c))`` on
``(seq_len, batch, input_size)`` returns the output ``(seq_len, batch, hidden_size)`` and the final ``(h, c)``,
each ``(num_layers, batch, hidden_size)``, and it has ``input_size``, ``hidden_size`` and ``num_layers``
attributes (sb3-contrib reshapes the features by ``input_size`` and sizes the stored states from the others).
A core whose output is narrower than its stored state (MetODS: N wide, its state N^2) also has ``output_size``;
a core with ``handles_episode_starts = True`` takes ``core(input, (h, c), episode_starts)`` and resets itself.
A builder makes one: ``builder(input_size, **options)``.

Each core has a config class, the one home of its options (defaults, docs, ``validate()``): a frozen dataclass
with ``option_names()``, ``as_dict()``, ``validate()``, ``hidden_size`` (the stored state's width) and
``output_size`` (the output's width). The policies take the fields of every registered config as keyword
arguments and build the chosen core's config from them (:func:`core_config_class`).

============  =========================================================================================
``"lstm"``    ``nn.LSTM(input_size, hidden_size, num_layers, **lstm_kwargs)``, sb3-contrib's own core; its
              width ``lstm_hidden_size``, else :class:`LSTMConfig`'s ``num_units * unit_size``
``"rim"``     :class:`~sb3_metarim.rim.RIM`, its options those of :class:`~sb3_metarim.rim.RIMConfig`
``"metods"``  :class:`~sb3_metarim.metods.MetODS`, its options those of :class:`~sb3_metarim.metods.MetODSConfig`
============  =========================================================================================

.. code-block:: python

    register_core("my_core", lambda input_size, **options: MyCore(input_size, **options), config=MyConfig)
    core = make_core("rim", input_size=16, num_units=4, top_k=2)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from sb3_metarim.core_options import CoreOptions, split_over_units
from sb3_metarim.metods import METODS_SLOW_PARAMETERS, MetODS, MetODSConfig
from sb3_metarim.rim import RIM, RIMConfig
from sb3_metarim.validation import check_positive_int

CoreBuilder = Callable[..., nn.Module]

LSTM_CORE = "lstm"
RIM_CORE = "rim"
METODS_CORE = "metods"

# The slow set (patterns over the policy's parameter names, see MetaRIMPPO's slow_parameters) that fast/slow
# training uses by default with each core: a RIM's attention (its meta-learned structure), an LSTM's value function
# (the paper's meta-LSTM split), MetODS's plasticity parameters.
RIM_SLOW_PARAMETERS = ("input_attention", "communication_attention")
LSTM_SLOW_PARAMETERS = ("value_net", "lstm_critic")


@dataclass(frozen=True)
class LSTMConfig(CoreOptions):
    """
    The options of the ``"lstm"`` core (an ``nn.LSTM``, for ablations beside a RIM): its width as the RIM's names
    say it, ``num_units * unit_size``, so that an ablation sets the same width the same way; ``lstm_hidden_size``
    sets it directly. The default, 6 x 32 = 192, is the paper's RIM width (the RIM's own default ``unit_size``
    became 16 with a dense LSTM of 96 beside the modules: 192 as well).

    :param num_units: How many RIM modules the width stands for.
    :param unit_size: The width of each.
    """

    num_units: int = 6
    unit_size: int = 32

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


CORES: dict[str, CoreBuilder] = {}
# Each core's default slow set (a core registered without one needs slow_parameters given with meta=True).
CORE_SLOW_PARAMETERS: dict[str, tuple[str, ...] | None] = {}
# The config class of each core (the one home of its options); None: a core registered without one, which takes
# LSTMConfig's fields (num_units and unit_size, a width of num_units * unit_size) unchecked.
CORE_CONFIGS: dict[str, type | None] = {}


def register_core(
    name: str,
    builder: CoreBuilder,
    *,
    config: type | None = None,
    replace: bool = False,
    slow_parameters: tuple[str, ...] | None = None,
) -> None:
    """
    Make ``name`` a value of the policies' ``recurrent_core``.

    :param name: The core's name.
    :param builder: ``builder(input_size, **options) -> nn.Module``, the module behaving like ``nn.LSTM``.
    :param config: The class of its options (see the module's docstring); the policies pass ``builder`` its fields,
        validated. ``None``: :class:`LSTMConfig`'s fields (``num_units``, ``unit_size``: a width of ``num_units *
        unit_size``), not validated.
    :param replace: Allow replacing a registered core of that name (otherwise a ``ValueError``).
    :param slow_parameters: The core's default slow set for fast/slow training (patterns over the policy's
        parameter names); ``None``: none, ``MetaRIMPPO(meta=True)`` then needs ``slow_parameters``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r}: must be a non-empty string")
    if not callable(builder):
        raise ValueError(f"builder={builder!r}: must be callable as builder(input_size, **options)")
    if name in CORES and not replace:
        raise ValueError(f"name={name!r}: a core of that name is registered already; pass replace=True to replace it")
    CORES[name] = builder
    CORE_CONFIGS[name] = config
    CORE_SLOW_PARAMETERS[name] = tuple(slow_parameters) if slow_parameters is not None else None


def default_slow_parameters(name: str) -> tuple[str, ...] | None:
    """:return: the default slow set of the registered core ``name`` (``None`` if it was registered without one)."""
    check_core_name(name)
    return CORE_SLOW_PARAMETERS[name]


def core_config_class(name: str) -> type:
    """:return: the config class of the registered core ``name`` (a ``ValueError`` if it is not registered)."""
    check_core_name(name)
    return CORE_CONFIGS[name] or LSTMConfig


def core_option_owners() -> dict[str, list[str]]:
    """:return: each option name of a registered core's config, with the cores that take it."""
    owners: dict[str, list[str]] = {}
    for name in CORE_CONFIGS:
        for option in core_config_class(name).option_names():
            owners.setdefault(option, []).append(name)
    return owners


def check_core_name(name: str) -> None:
    """Raise a ``ValueError`` unless ``name`` is a registered core, listing the registered ones."""
    if name not in CORES:
        raise ValueError(f"recurrent_core={name!r}: unknown core; registered: {', '.join(map(repr, sorted(CORES)))}")


def make_core(name: str, input_size: int, **options: Any) -> nn.Module:
    """
    :param name: A registered core (``"lstm"``, ``"rim"``, or one added with :func:`register_core`).
    :param input_size: Size of the input features.
    :param options: The core's options (for ``"rim"`` :class:`~sb3_metarim.rim.RIMConfig`'s fields, or ``config``;
        for ``"metods"`` :class:`~sb3_metarim.metods.MetODSConfig`'s;
        for ``"lstm"`` ``hidden_size``, ``num_layers`` and ``nn.LSTM``'s other arguments).
    :return: the core.
    """
    check_core_name(name)
    return CORES[name](input_size, **options)


def build_lstm(input_size: int, hidden_size: int, num_layers: int = 1, **lstm_kwargs: Any) -> nn.LSTM:
    """:return: ``nn.LSTM(input_size, hidden_size, num_layers=num_layers, **lstm_kwargs)``, as sb3-contrib builds it."""
    return nn.LSTM(input_size, hidden_size, num_layers=num_layers, **lstm_kwargs)


def build_rim(input_size: int, config: RIMConfig | None = None, **options: Any) -> RIM:
    """:return: ``RIM(input_size, config)``, or with ``RIMConfig(**options)``."""
    return RIM(input_size, config, **options)


def build_metods(input_size: int, config: MetODSConfig | None = None, **options: Any) -> MetODS:
    """:return: ``MetODS(input_size, config)``, or with ``MetODSConfig(**options)``."""
    return MetODS(input_size, config, **options)


register_core(LSTM_CORE, build_lstm, config=LSTMConfig, slow_parameters=LSTM_SLOW_PARAMETERS)
register_core(RIM_CORE, build_rim, config=RIMConfig, slow_parameters=RIM_SLOW_PARAMETERS)
register_core(METODS_CORE, build_metods, config=MetODSConfig, slow_parameters=METODS_SLOW_PARAMETERS)
