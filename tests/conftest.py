from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

import sb3_metarim  # noqa: F401  (registers the environments)
from tests.postgres_server import Unavailable, postgres_server

# A tiny RIM, the modules alone (the default core adds a dense LSTM of 96 beside them).
SMALL_CORE = dict(
    num_units=4, top_k=2, unit_size=8, dense_size=0, input_key_size=8, input_value_size=8, comm_key_size=8, comm_value_size=8
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    th.set_num_threads(1)


@pytest.fixture
def cue_env():
    return make_vec_env("sb3_metarim/CueMemory-v0", n_envs=2, seed=0)


def throwaway_postgres(password: str | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL server's URL (the test is skipped, saying why, when none can be started)."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server(password))
        except Unavailable as reason:
            pytest.skip(f"no PostgreSQL server could be started: {reason}")
        yield url


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server's URL, trust authentication."""
    yield from throwaway_postgres()


# The password of postgres_password_url's server: distinctive, so that a search for it finds only leaks.
POSTGRES_PASSWORD = "pw-7Hq2-leak-probe"


@pytest.fixture
def postgres_password_url():
    """A throwaway PostgreSQL server's URL with its password (POSTGRES_PASSWORD), which it requires."""
    yield from throwaway_postgres(POSTGRES_PASSWORD)
