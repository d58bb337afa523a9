"""
Recurrent cores by name: what a policy runs where sb3-contrib puts its ``nn.LSTM``, chosen by the policy's
``recurrent_core`` argument, and the one place where a policy's keyword arguments become a core's options
(:func:`core_config_from_policy_kwargs`).

A core is an ``nn.Module`` that behaves like ``nn.LSTM`` for sb3-contrib: ``core(input, (h, c))`` on
``(seq_len, batch, input_size)`` returns the output ``(seq_len, batch, hidden_size)`` and the final ``(h, c)``,
each ``(num_layers, batch, hidden_size)``, and it has ``input_size``, ``hidden_size`` and ``num_layers``
attributes (sb3-contrib reshapes the features by ``input_size`` and sizes the stored states from the others).
A core whose output is narrower than its stored state (MetODS: N wide, its state N^2) also has ``output_size``;
a core with ``handles_episode_starts = True`` takes ``core(input, (h, c), episode_starts)`` and resets itself.
A builder makes one: ``builder(input_size, **options)``.

Each core has a config class, the one home of its options (defaults, docs, checks): a frozen dataclass derived
from :class:`~sb3_metarim.cores.options.CoreOptions`, checked when made, with ``hidden_size`` (the stored state's
width) and ``output_size`` (the output's width).

============  =========================================================================================
``"lstm"``    ``nn.LSTM(input_size, hidden_size, num_layers, **lstm_kwargs)``, sb3-contrib's own core; its
              width ``lstm_hidden_size``, else :class:`~sb3_metarim.cores.lstm.LSTMConfig`'s
              ``num_units * unit_size``
``"gru"``     :class:`~sb3_metarim.cores.gru.GRU`, an ``nn.GRU`` with ``nn.LSTM``'s interface, sized and stacked as
              the ``"lstm"`` core (:class:`~sb3_metarim.cores.gru.GRUConfig`)
``"rim"``     :class:`~sb3_metarim.cores.rim.RIM`, its options those of :class:`~sb3_metarim.cores.rim.RIMConfig`,
              stacked by ``n_lstm_layers`` (``lstm_kwargs``: ``dropout`` between layers)
``"metods"``  :class:`~sb3_metarim.cores.metods.MetODS`, its options those of
              :class:`~sb3_metarim.cores.metods.MetODSConfig`
============  =========================================================================================

.. code-block:: python

    register_core("my_core", lambda input_size, **options: MyCore(input_size, **options), config=MyConfig)
    core = make_core("rim", input_size=16, num_units=4, top_k=2)
"""

import inspect
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

from torch import nn

from sb3_metarim.common.validation import PolicyArgumentError, check_positive_int
from sb3_metarim.cores.gru import GRUConfig, build_gru
from sb3_metarim.cores.lstm import LSTM_SLOW_PARAMETERS, LSTMConfig, build_lstm
from sb3_metarim.cores.metods import METODS_SLOW_PARAMETERS, MetODS, MetODSConfig
from sb3_metarim.cores.options import CoreOptions
from sb3_metarim.cores.rim import RIM, RIM_SLOW_PARAMETERS, RIMConfig

CoreBuilder = Callable[..., nn.Module]

LSTM_CORE = "lstm"
GRU_CORE = "gru"
RIM_CORE = "rim"
METODS_CORE = "metods"

CORES: dict[str, CoreBuilder] = {}
# Each core's default slow set (a core registered without one needs slow_parameters given with meta=True).
CORE_SLOW_PARAMETERS: dict[str, tuple[str, ...] | None] = {}
# The config class of each core (the one home of its options); a core registered without one takes LSTMConfig's
# fields (num_units and unit_size, a width of num_units * unit_size).
CORE_CONFIGS: dict[str, type[CoreOptions]] = {}


def register_core(
    name: str,
    builder: CoreBuilder,
    *,
    config: type[CoreOptions] | None = None,
    replace: bool = False,
    slow_parameters: tuple[str, ...] | None = None,
) -> None:
    """
    Make ``name`` a value of the policies' ``recurrent_core``.

    :param name: The core's name.
    :param builder: ``builder(input_size, **options) -> nn.Module``, the module behaving like ``nn.LSTM``.
    :param config: The class of its options (see the module's docstring); the policies pass ``builder`` its fields.
        ``None``: :class:`~sb3_metarim.cores.lstm.LSTMConfig`'s fields (``num_units``, ``unit_size``: a width of
        ``num_units * unit_size``).
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
    CORE_CONFIGS[name] = config or LSTMConfig
    CORE_SLOW_PARAMETERS[name] = tuple(slow_parameters) if slow_parameters is not None else None


def check_core_name(name: str) -> None:
    """Raise a ``ValueError`` unless ``name`` is a registered core, listing the registered ones."""
    if name not in CORES:
        raise ValueError(f"recurrent_core={name!r}: unknown core; registered: {', '.join(map(repr, sorted(CORES)))}")


def default_slow_parameters(name: str) -> tuple[str, ...] | None:
    """:return: the default slow set of the registered core ``name`` (``None`` if it was registered without one)."""
    check_core_name(name)
    return CORE_SLOW_PARAMETERS[name]


def core_config_class(name: str) -> type[CoreOptions]:
    """:return: the config class of the registered core ``name`` (a ``ValueError`` if it is not registered)."""
    check_core_name(name)
    return CORE_CONFIGS[name]


def core_option_owners() -> dict[str, list[str]]:
    """:return: each option name of a registered core's config, with the cores that take it."""
    owners: dict[str, list[str]] = {}
    for name, config in CORE_CONFIGS.items():
        for option in config.option_names():
            owners.setdefault(option, []).append(name)
    return owners


def make_core(name: str, input_size: int, **options: Any) -> nn.Module:
    """
    :param name: A registered core (``"lstm"``, ``"rim"``, ``"metods"``, or one added with :func:`register_core`).
    :param input_size: Size of the input features.
    :param options: The core's options (for ``"rim"`` :class:`~sb3_metarim.cores.rim.RIMConfig`'s fields, or
        ``config``, and ``num_layers`` and ``layer_dropout``; for ``"metods"``
        :class:`~sb3_metarim.cores.metods.MetODSConfig`'s; for ``"lstm"`` ``hidden_size``, ``num_layers`` and
        ``nn.LSTM``'s other arguments).
    :return: the core.
    """
    check_core_name(name)
    return CORES[name](input_size, **options)


def core_config_from_policy_kwargs(recurrent_core: str, kwargs: dict[str, Any]) -> CoreOptions:
    """
    Turn a policy's keyword arguments into the options of ``recurrent_core``: pop every registered core's options
    and ``lstm_hidden_size`` out of ``kwargs`` and build the core's config from them.

    :param recurrent_core: A registered core.
    :param kwargs: The policy's keyword arguments; what is left in it goes to ``RecurrentActorCriticPolicy``.
    :return: the core's config. An option that only other cores take is a
        :class:`~sb3_metarim.common.validation.PolicyArgumentError` (a ``ValueError``) naming it, its value and the
        options this core takes; so is ``n_lstm_layers`` other than 1 or ``lstm_kwargs`` for a core that does not
        take them (``takes_rnn_arguments``), or an argument of ``lstm_kwargs`` that the core's
        ``rnn_arguments`` refuses, or any option out of range. ``lstm_hidden_size`` sets the core's width
        (:func:`width_options`).
    """
    # Checked before RecurrentActorCriticPolicy's own asserts run: an AssertionError too, so that what RecurrentPPO's
    # users catch for those arguments still catches ours.
    try:
        return _core_config(recurrent_core, kwargs)
    except ValueError as error:
        raise PolicyArgumentError(str(error)) from error


def _core_config(recurrent_core: str, kwargs: dict[str, Any]) -> CoreOptions:
    """:func:`core_config_from_policy_kwargs`, raising ``ValueError``."""
    config_class = core_config_class(recurrent_core)
    own = config_class.option_names()
    owners = core_option_owners()
    options = {name: kwargs.pop(name) for name in owners if name in kwargs}
    for name, value in options.items():
        if name not in own:
            raise ValueError(
                f"{name}={value!r}: an option of recurrent_core {' or '.join(map(repr, owners[name]))}, not of "
                f"recurrent_core={recurrent_core!r}; its options: {', '.join(own)}"
            )
    if "lstm_hidden_size" in kwargs:
        options.update(width_options(recurrent_core, kwargs.pop("lstm_hidden_size"), options))
    n_layers, lstm_kwargs = kwargs.get("n_lstm_layers", 1), kwargs.get("lstm_kwargs") or {}
    check_positive_int("n_lstm_layers", n_layers)
    if config_class.takes_rnn_arguments:
        config_class.rnn_arguments(n_layers, lstm_kwargs)
    elif n_layers != 1:
        raise ValueError(f"n_lstm_layers={n_layers!r}: a {recurrent_core!r} core has exactly 1 layer")
    elif lstm_kwargs:
        stacking = sorted(name for name, config in CORE_CONFIGS.items() if config.takes_rnn_arguments)
        raise ValueError(
            f"lstm_kwargs={lstm_kwargs!r}: nn.LSTM's arguments, unused by recurrent_core={recurrent_core!r}; set the "
            f"core's options instead ({', '.join(own)}) or use recurrent_core {' or '.join(map(repr, stacking))}"
        )
    return config_class(**options)


def width_options(recurrent_core: str, lstm_hidden_size: object, options: dict[str, Any]) -> dict[str, Any]:
    """
    ``RecurrentPPO``'s ``lstm_hidden_size`` as the core's options: the core's total width, as its config class
    reads it (``options_for_width``): for ``"rim"`` the modules and the dense LSTM together (half each by default:
    192 is 6 modules of 16 and a dense LSTM of 96; any width, by :meth:`~sb3_metarim.cores.rim.RIMConfig.options_for_width`'s
    rule), for ``"lstm"`` the ``nn.LSTM``'s width, for ``"metods"`` ``num_neurons``. Given with the options that set
    the width, it must agree with them.

    :param recurrent_core: A registered core.
    :param lstm_hidden_size: The width asked for.
    :param options: The core options given.
    :return: the options that set the width.
    """
    check_positive_int("lstm_hidden_size", lstm_hidden_size)
    config_class = core_config_class(recurrent_core)
    derived = config_class.options_for_width(lstm_hidden_size, options)
    if derived is None:
        raise ValueError(
            f"lstm_hidden_size={lstm_hidden_size!r}: recurrent_core={recurrent_core!r} takes its width from its options "
            f"({', '.join(config_class.option_names())})"
        )
    return derived


def with_core_options_signature(init: Callable[..., None]) -> Callable[..., None]:
    """
    Give ``init`` (``..., **kwargs``) a signature listing the options of the built-in cores (RIM's, then MetODS's,
    then the LSTM's) as keyword arguments before ``**kwargs``, so that ``inspect.signature``, ``help()`` and
    rl-zoo3's config checks see them. A name two configs share is listed once, with the RIM's default.
    """
    signature = inspect.signature(init)
    *parameters, var_keyword = signature.parameters.values()
    options: dict[str, inspect.Parameter] = {}
    for config in (RIMConfig, MetODSConfig, LSTMConfig):
        for option in fields(config):
            default = option.default if option.default is not MISSING else inspect.Parameter.empty
            parameter = inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=option.type)
            options.setdefault(option.name, parameter)
    init.__signature__ = signature.replace(parameters=[*parameters, *options.values(), var_keyword])
    return init


register_core(LSTM_CORE, build_lstm, config=LSTMConfig, slow_parameters=LSTM_SLOW_PARAMETERS)
register_core(GRU_CORE, build_gru, config=GRUConfig, slow_parameters=LSTM_SLOW_PARAMETERS)
register_core(RIM_CORE, RIM, config=RIMConfig, slow_parameters=RIM_SLOW_PARAMETERS)
register_core(METODS_CORE, MetODS, config=MetODSConfig, slow_parameters=METODS_SLOW_PARAMETERS)
