"""Argument checks shared by the package: a bad value gets a ``ValueError`` naming the argument and what is allowed."""


def check_positive_int(name: str, value: object) -> None:
    """
    Raise a ``ValueError`` unless ``value`` is an integer >= 1.

    :param name: The argument's name, for the message.
    :param value: The value to check.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: must be a positive integer")
