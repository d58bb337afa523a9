"""
MiniGrid and BabyAI for SB3: the mission as token ids, the grid as ids, a features extractor for them, and
:func:`make_meta_env`, which builds the whole meta-RL stack.

.. code-block:: python

    env = make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=8, episodes_per_trial=2, seed=0)
    model = MetaRIMPPO("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor))
"""

import re
from functools import partial
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid and BabyAI environments)
import numpy as np
import torch as th
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
from minigrid.minigrid_env import MiniGridEnv
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from torch import nn

from sb3_metarim.validation import check_positive_int
from sb3_metarim.wrappers import PrevActionRewardWrapper, TaskSampler, TrialWrapper

MISSION_KEY = "mission"
IMAGE_KEY = "image"

PAD_ID = 0
UNK_ID = 1
# Append only: a word's id is an input of every model trained with this vocabulary.
MISSION_WORDS = (
    # BabyAI's grammar (minigrid/envs/babyai/core/verifier.py): instructions, connectives, object descriptions.
    *("go", "to", "pick", "up", "open", "put", "next", "and", "then", "after", "you"),
    *("the", "a", "object", "box", "ball", "key", "door"),
    *("red", "green", "blue", "purple", "yellow", "grey"),
    *("in", "front", "of", "behind", "on", "your", "left", "right"),
    # The MiniGrid environments' missions (minigrid/envs/*.py).
    *("get", "goal", "square", "avoid", "lava", "find", "opening", "use", "reach", "traverse", "rooms", "maze"),
    *("matching", "at", "end", "hallway", "near", "fetch", "must", "from", "room", "unlock"),
)
WORD_IDS = {word: index for index, word in enumerate(MISSION_WORDS, start=UNK_ID + 1)}
VOCABULARY_SIZE = len(MISSION_WORDS) + 2
# BabyAI's longest: "<A> and <B>, then <C> and <D>" where each is "put <desc> next to <desc>" and each <desc> is
# "a red ball in front of you": 4 * 17 + 2 ("and") + 2 ("after you") = 72 words.
MAX_MISSION_LENGTH = 72

# Highest id of each image channel (object, colour, state). FullyObsWrapper writes the agent's direction (0-3)
# into the state channel of the agent's cell.
GRID_ID_HIGH = np.array(
    [max(OBJECT_TO_IDX.values()), max(COLOR_TO_IDX.values()), max(*STATE_TO_IDX.values(), 3)], dtype=np.uint8
)


def tokenize_mission(mission: str, max_length: int = MAX_MISSION_LENGTH, strict: bool = False) -> np.ndarray:
    """
    The mission's words (lower-cased letter runs, punctuation dropped, as BabyAI does) as ids of
    ``MISSION_WORDS``, padded with ``PAD_ID`` (0) to ``max_length``.

    :param mission: The mission string.
    :param max_length: Length of the result; a longer mission raises a ``ValueError``.
    :param strict: Raise a ``ValueError`` on a word outside the vocabulary instead of mapping it to ``UNK_ID`` (1).
    :return: int64 array of shape ``(max_length,)``.
    """
    words = re.findall(r"[a-z]+", mission.lower())
    unknown = sorted({word for word in words if word not in WORD_IDS})
    if strict and unknown:
        raise ValueError(
            f"mission={mission!r}: unknown word(s) {unknown}; the vocabulary covers the BabyAI and MiniGrid mission "
            f"grammars (sb3_metarim.envs.minigrid.MISSION_WORDS); with strict=False unknown words become UNK_ID={UNK_ID}"
        )
    if len(words) > max_length:
        raise ValueError(f"mission={mission!r}: {len(words)} words, longer than max_length={max_length}")
    ids = np.full(max_length, PAD_ID, dtype=np.int64)
    ids[: len(words)] = [WORD_IDS.get(word, UNK_ID) for word in words]
    return ids


class MissionTokenWrapper(gym.ObservationWrapper):
    """
    Replaces the ``"mission"`` string of a Dict observation by its token ids (:func:`tokenize_mission`), a Box of
    shape ``(max_length,)`` with values in ``[0, VOCABULARY_SIZE - 1]``.

    :param env: An env whose observation is a Dict with a ``"mission"`` key (MiniGrid, BabyAI).
    :param max_length: Number of token ids; the default fits every BabyAI and MiniGrid mission.
    :param strict: Raise a ``ValueError`` on an unknown word instead of mapping it to ``UNK_ID``.
    """

    def __init__(self, env: gym.Env, max_length: int = MAX_MISSION_LENGTH, strict: bool = False) -> None:
        super().__init__(env)
        check_positive_int("max_length", max_length)
        require_key(env.observation_space, MISSION_KEY, "MissionTokenWrapper")
        self.max_length = max_length
        self.strict = strict
        mission_space = spaces.Box(0, VOCABULARY_SIZE - 1, shape=(max_length,), dtype=np.int64)
        self.observation_space = spaces.Dict(env.observation_space.spaces | {MISSION_KEY: mission_space})

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return observation | {MISSION_KEY: tokenize_mission(observation[MISSION_KEY], self.max_length, self.strict)}


class GridIdsWrapper(gym.ObservationWrapper):
    """
    Declares MiniGrid's ``"image"`` as what it is, a grid of (object, colour, state) ids, not pixels. MiniGrid
    declares it as 0-255 uint8, so SB3 would take it for a picture: divide it by 255 and hand it to a CNN built for
    36x36 images and more, which fails on a 7x7 view. With the ids' true bounds SB3's default ``CombinedExtractor``
    flattens it, and :class:`MiniGridFeaturesExtractor` embeds it. Pixel images (``RGBImgObsWrapper``) are refused
    at the first observation.

    :param env: A MiniGrid env whose observation has an ``(H, W, 3)`` uint8 ``"image"`` of ids.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        image_space = require_key(env.observation_space, IMAGE_KEY, "GridIdsWrapper")
        is_grid = isinstance(image_space, spaces.Box) and image_space.dtype == np.uint8 and len(image_space.shape) == 3
        if not (is_grid and image_space.shape[-1] == 3):
            raise ValueError(f"observation_space[{IMAGE_KEY!r}]={image_space}: must be an (H, W, 3) uint8 Box of MiniGrid ids")
        high = np.broadcast_to(GRID_ID_HIGH, image_space.shape)
        grid_space = spaces.Box(np.zeros_like(high), high, dtype=np.uint8)
        self.observation_space = spaces.Dict(env.observation_space.spaces | {IMAGE_KEY: grid_space})

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        if not self.observation_space[IMAGE_KEY].contains(observation[IMAGE_KEY]):
            raise ValueError(
                f"observation[{IMAGE_KEY!r}] has values above MiniGrid's (object, colour, state) ids {GRID_ID_HIGH.tolist()}: "
                "GridIdsWrapper needs the grid of ids, not pixels"
            )
        return observation


def require_key(observation_space: spaces.Space, key: str, user: str) -> spaces.Space:
    """:return: ``observation_space[key]``, or raise a ``ValueError`` saying that ``user`` needs it."""
    if not isinstance(observation_space, spaces.Dict) or key not in observation_space.spaces:
        raise ValueError(f"observation_space={observation_space}: {user} needs a Dict observation with a {key!r} key")
    return observation_space[key]


class GridEncoder(nn.Module):
    """
    Embeds each cell's (object, colour, state) ids, sums the three embeddings, and reads the grid with two 3x3
    convolutions and a linear layer.

    :param grid_space: The ``"image"`` space of ids (channels last), as :class:`GridIdsWrapper` declares it.
    :param embedding_dim: Size of each id's embedding.
    :param features_dim: Size of the output.
    """

    def __init__(self, grid_space: spaces.Box, embedding_dim: int, features_dim: int) -> None:
        super().__init__()
        ids_per_channel = grid_space.high.reshape(-1, grid_space.shape[-1]).max(axis=0).astype(np.int64) + 1
        # One table for the three channels: shift each channel's ids past the previous channels'.
        self.register_buffer("channel_offsets", th.as_tensor(np.cumsum(ids_per_channel) - ids_per_channel))
        self.embedding = nn.Embedding(int(ids_per_channel.sum()), embedding_dim)
        height, width = grid_space.shape[:2]
        self.net = nn.Sequential(
            nn.Conv2d(embedding_dim, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * height * width, features_dim),
            nn.ReLU(),
        )

    def forward(self, grid: th.Tensor) -> th.Tensor:
        """:param grid: (batch, H, W, 3) ids (any dtype). :return: (batch, features_dim)."""
        cells = self.embedding(grid.long() + self.channel_offsets).sum(dim=-2)
        return self.net(cells.permute(0, 3, 1, 2))


class MissionEncoder(nn.Module):
    """
    Embeds the mission's token ids and reads them with a GRU, up to each mission's last word.

    :param vocabulary_size: Number of token ids (``PAD_ID`` embeds to zeros).
    :param embedding_dim: Size of each word's embedding.
    :param features_dim: Hidden size of the GRU, the size of the output.
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, features_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=PAD_ID)
        self.gru = nn.GRU(embedding_dim, features_dim, batch_first=True)

    def forward(self, tokens: th.Tensor) -> th.Tensor:
        """:param tokens: (batch, length) ids, padded at the end (any dtype). :return: (batch, features_dim)."""
        tokens = tokens.long()
        # An empty mission (MiniGrid's Playground) still gets one (padding) step: packing refuses length 0.
        lengths = (tokens != PAD_ID).sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, hidden = self.gru(packed)
        return hidden[-1]


class MiniGridFeaturesExtractor(BaseFeaturesExtractor):
    """
    Features of a MiniGrid/BabyAI Dict observation as :func:`make_meta_env` builds it: the ``"image"`` grid of ids
    through a :class:`GridEncoder`, the ``"mission"`` token ids (if present) through a :class:`MissionEncoder`, and
    every other key (``"direction"``, already one-hot from SB3's preprocessing, ``"prev_action"``,
    ``"prev_reward"``, ``"first_step"``) flattened and passed through, all concatenated.
    Use it with ``policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor)``.

    :param observation_space: The Dict observation space.
    :param grid_embedding_dim: Size of each grid id's embedding.
    :param image_features_dim: Size of the image's features.
    :param word_embedding_dim: Size of each word's embedding.
    :param mission_features_dim: Size of the mission's features (the GRU's hidden size).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        grid_embedding_dim: int = 8,
        image_features_dim: int = 128,
        word_embedding_dim: int = 32,
        mission_features_dim: int = 64,
    ) -> None:
        grid_space = require_key(observation_space, IMAGE_KEY, "MiniGridFeaturesExtractor")
        if not isinstance(grid_space, spaces.Box) or len(grid_space.shape) != 3 or is_image_space(grid_space):
            raise ValueError(
                f"observation_space[{IMAGE_KEY!r}]={grid_space}: MiniGridFeaturesExtractor needs the grid of ids as "
                "GridIdsWrapper declares it; build the env with make_meta_env or wrap it in GridIdsWrapper"
            )
        mission_space = observation_space.spaces.get(MISSION_KEY)
        self.pass_through_keys = sorted(set(observation_space.spaces) - {IMAGE_KEY, MISSION_KEY})
        pass_through_dim = sum(get_flattened_obs_dim(observation_space[key]) for key in self.pass_through_keys)
        mission_dim = 0 if mission_space is None else mission_features_dim
        super().__init__(observation_space, image_features_dim + mission_dim + pass_through_dim)
        self.grid_encoder = GridEncoder(grid_space, grid_embedding_dim, image_features_dim)
        self.mission_encoder = None
        if mission_space is not None:
            vocabulary_size = int(np.max(mission_space.high)) + 1
            self.mission_encoder = MissionEncoder(vocabulary_size, word_embedding_dim, mission_features_dim)

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        features = [self.grid_encoder(observations[IMAGE_KEY])]
        if self.mission_encoder is not None:
            features.append(self.mission_encoder(observations[MISSION_KEY]))
        features += [observations[key].flatten(start_dim=1).float() for key in self.pass_through_keys]
        return th.cat(features, dim=1)


def make_meta_env(
    env_id: str,
    n_envs: int = 1,
    episodes_per_trial: int = 1,
    seed: int | None = None,
    *,
    env_kwargs: dict[str, Any] | None = None,
    task_sampler: TaskSampler | None = None,
    max_trial_steps: int | None = None,
    strict_mission: bool = False,
    monitor_dir: str | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """
    A VecEnv of meta-RL trials ready for ``MetaRIMPPO("MultiInputPolicy", env)``. Each env is, innermost first:
    ``gym.make(env_id, **env_kwargs)``; for MiniGrid/BabyAI :class:`MissionTokenWrapper` and
    :class:`GridIdsWrapper`; :class:`~sb3_metarim.wrappers.TrialWrapper`;
    SB3's ``Monitor``; :class:`~sb3_metarim.wrappers.PrevActionRewardWrapper` with its ``"first_step"`` flag.

    This order matters: ``Monitor`` outside ``TrialWrapper`` reports each trial as one episode (inside, SB3 would
    log every inner episode), and ``PrevActionRewardWrapper`` outside it carries the previous action and reward
    across the inner episodes of a trial, marking each inner episode's first step from the
    ``INNER_EPISODE_START`` flag that ``TrialWrapper`` sets in ``info``.

    SB3's default ``CombinedExtractor`` works on the result (it flattens the grid and the token ids); for
    MiniGrid/BabyAI pass ``policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor)``, which embeds
    them. Log the adaptation within trials with :class:`~sb3_metarim.callbacks.TrialLogger`.

    :param env_id: A registered gymnasium id (MiniGrid/BabyAI, ``"sb3_metarim/BernoulliBandit-v0"``, any other).
    :param n_envs: Number of envs.
    :param episodes_per_trial: Inner episodes per trial (episodes of one task, e.g. one MiniGrid layout).
    :param seed: Seed of env ``i`` is ``seed + i`` (it seeds its trial wrapper's task draws); ``None``: random.
    :param env_kwargs: Keyword arguments of ``gym.make``.
    :param task_sampler: See :class:`~sb3_metarim.wrappers.TrialWrapper` (``None``: the env's ``sample_task``
        if it has one, else a reset seed per trial).
    :param max_trial_steps: Steps after which a trial is truncated, ``None`` for no cap.
    :param strict_mission: Raise a ``ValueError`` on a mission word outside the vocabulary instead of
        mapping it to ``UNK_ID``.
    :param monitor_dir: Folder of the ``Monitor`` files (one line per trial), ``None`` for none.
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param vec_env_kwargs: Keyword arguments of ``vec_env_cls``.
    :return: The VecEnv.
    """
    check_positive_int("n_envs", n_envs)
    check_positive_int("episodes_per_trial", episodes_per_trial)
    if max_trial_steps is not None:
        check_positive_int("max_trial_steps", max_trial_steps)
    make_trial_env = partial(
        _make_trial_env,
        env_id,
        env_kwargs or {},
        episodes_per_trial=episodes_per_trial,
        task_sampler=task_sampler,
        max_trial_steps=max_trial_steps,
        strict_mission=strict_mission,
    )
    return make_vec_env(
        make_trial_env,
        n_envs=n_envs,
        seed=seed,
        monitor_dir=monitor_dir,
        wrapper_class=PrevActionRewardWrapper,
        wrapper_kwargs=dict(first_step=True),
        vec_env_cls=vec_env_cls,
        vec_env_kwargs=vec_env_kwargs,
    )


def _make_trial_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    episodes_per_trial: int,
    task_sampler: TaskSampler | None,
    max_trial_steps: int | None,
    strict_mission: bool,
) -> TrialWrapper:
    env = gym.make(env_id, **env_kwargs)
    if isinstance(env.unwrapped, MiniGridEnv):
        env = GridIdsWrapper(MissionTokenWrapper(env, strict=strict_mission))
    return TrialWrapper(env, episodes_per_trial, task_sampler=task_sampler, max_trial_steps=max_trial_steps)
