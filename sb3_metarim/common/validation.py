"""Argument checks shared by the package: a bad value gets a ``ValueError`` naming the argument and what is allowed."""

from gymnasium import spaces


def check_positive_int(name: str, value: object) -> None:
    """
    Raise a ``ValueError`` unless ``value`` is an integer >= 1.

    :param name: The argument's name, for the message.
    :param value: The value to check.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: must be a positive integer")


def require_key(observation_space: spaces.Space, key: str, user: str) -> spaces.Space:
    """:return: ``observation_space[key]``, or raise a ``ValueError`` saying that ``user`` needs it."""
    if not isinstance(observation_space, spaces.Dict) or key not in observation_space.spaces:
        raise ValueError(f"observation_space={observation_space}: {user} needs a Dict observation with a {key!r} key")
    return observation_space[key]


class PolicyArgumentError(ValueError, AssertionError):
    """
    A policy argument (``policy_kwargs``) that is not allowed, raised while the policy is built. A ``ValueError``
    naming the argument, its value and what is allowed; an ``AssertionError`` too, because sb3-contrib's
    ``RecurrentActorCriticPolicy`` checks its own arguments with ``assert``: code written for ``RecurrentPPO`` that
    catches ``AssertionError`` for a policy argument it passed catches ours for the same argument.
    """
