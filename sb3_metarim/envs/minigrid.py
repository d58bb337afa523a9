"""
MiniGrid and BabyAI for SB3 (needs the ``minigrid`` package: ``pip install "sb3-metarim[minigrid]"``): the
mission's vocabulary and tokenizer, :class:`MissionTokenWrapper` (the mission as token ids) and
:class:`GridIdsWrapper` (the grid declared as ids). Their features extractor is
:class:`sb3_metarim.common.torch_layers.MiniGridFeaturesExtractor`; :func:`sb3_metarim.envs.make_meta_env` applies the
wrappers to MiniGrid/BabyAI envs.

.. code-block:: python

    env = make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=8, episodes_per_trial=2, seed=0)
    model = MetaRIMPPO("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor))
"""

import re
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid and BabyAI environments)
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

from sb3_metarim.common.torch_layers import IMAGE_KEY, MISSION_KEY, PAD_ID
from sb3_metarim.common.validation import check_positive_int, require_key

__all__ = [
    "GRID_ID_HIGH",
    "IMAGE_KEY",
    "MAX_MISSION_LENGTH",
    "MISSION_KEY",
    "MISSION_WORDS",
    "PAD_ID",
    "UNK_ID",
    "VOCABULARY_SIZE",
    "WORD_IDS",
    "GridIdsWrapper",
    "MissionTokenWrapper",
    "SuccessInfoWrapper",
    "tokenize_mission",
]

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


class SuccessInfoWrapper(gym.Wrapper):
    """
    Reports MiniGrid's success the way SB3 reads it: ``info["is_success"]`` at the end of each episode, true when the
    episode terminated (not truncated at ``max_steps``) with a positive reward. MiniGrid gives ``1 - 0.9 * steps /
    max_steps`` for reaching the goal or completing the BabyAI mission, and 0 (lava, a wrong BabyAI action) or -1
    (Dynamic-Obstacles' collision) for a failed end. An ``is_success`` already in ``info`` is kept.

    :param env: A MiniGrid or BabyAI env (any wrapper of one).
    """

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if (terminated or truncated) and "is_success" not in info:
            info = {**info, "is_success": bool(terminated and reward > 0)}
        return observation, reward, terminated, truncated, info
