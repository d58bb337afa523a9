"""What the options dataclass of every core shares (`RIMConfig`, `MetODSConfig`)."""

from dataclasses import asdict, fields
from typing import Any


class CoreOptions:
    """
    Base of a core's frozen options dataclass. A subclass adds its fields, ``validate()`` and ``hidden_size`` (the
    width of each of ``h`` and ``c`` in the stored state); ``output_size`` (what the ``mlp_extractor`` reads)
    defaults to it.
    """

    hidden_size: int

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
