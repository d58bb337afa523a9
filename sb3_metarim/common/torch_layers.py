"""
Features extractors (``nn.Module`` subclasses) for the observations of this package's wrappers: MiniGrid/BabyAI's grid of ids
and mission tokens (:class:`MiniGridFeaturesExtractor`, with its :class:`GridEncoder` and :class:`MissionEncoder`).

.. code-block:: python

    model = MetaRIMPPO("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor))
"""

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_metarim.common.validation import require_key

# The Dict observation keys that MissionTokenWrapper and GridIdsWrapper (sb3_metarim.envs.minigrid) write.
MISSION_KEY = "mission"
IMAGE_KEY = "image"
# The mission's padding token id.
PAD_ID = 0
# Channels of each of GridEncoder's two convolutions (FiLM scales and shifts each of them).
GRID_CHANNELS = 32
# How MiniGridFeaturesExtractor lets the mission meet the grid.
MISSION_CONDITIONINGS = ("concat", "film")


class GridEncoder(nn.Module):
    """
    Embeds each cell's (object, colour, state) ids, sums the three embeddings, and reads the grid with two 3x3
    convolutions and a linear layer.

    With ``condition_dim > 0`` each convolution's channels are scaled and shifted by a vector computed from a
    condition (FiLM, Perez et al. 2018, as BabyAI's agents condition their image on the instruction):
    ``relu((1 + gamma(condition)) * conv(x) + beta(condition))``. ``gamma`` and ``beta`` start at zero, so an
    untrained conditioned encoder reads the grid as the plain one does.

    :param grid_space: The ``"image"`` space of ids (channels last), as :class:`GridIdsWrapper` declares it.
    :param embedding_dim: Size of each id's embedding.
    :param features_dim: Size of the output.
    :param condition_dim: Size of the condition vector (0: no conditioning).
    """

    def __init__(self, grid_space: spaces.Box, embedding_dim: int, features_dim: int, condition_dim: int = 0) -> None:
        super().__init__()
        ids_per_channel = grid_space.high.reshape(-1, grid_space.shape[-1]).max(axis=0).astype(np.int64) + 1
        # One table for the three channels: shift each channel's ids past the previous channels'.
        self.register_buffer("channel_offsets", th.as_tensor(np.cumsum(ids_per_channel) - ids_per_channel))
        self.embedding = nn.Embedding(int(ids_per_channel.sum()), embedding_dim)
        height, width = grid_space.shape[:2]
        self.net = nn.Sequential(
            nn.Conv2d(embedding_dim, GRID_CHANNELS, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(GRID_CHANNELS, GRID_CHANNELS, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(GRID_CHANNELS * height * width, features_dim),
            nn.ReLU(),
        )
        # One (gamma, beta) layer per convolution; kept out of `net` so that plain encoders keep their parameter names.
        self.film = nn.ModuleList(nn.Linear(condition_dim, 2 * GRID_CHANNELS) for _ in range(2)) if condition_dim else None
        for layer in self.film or ():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, grid: th.Tensor, condition: th.Tensor | None = None) -> th.Tensor:
        """
        :param grid: (batch, H, W, 3) ids (any dtype).
        :param condition: (batch, condition_dim), required with ``condition_dim > 0``.
        :return: (batch, features_dim).
        """
        cells = self.embedding(grid.long() + self.channel_offsets).sum(dim=-2).permute(0, 3, 1, 2)
        if self.film is None:
            return self.net(cells)
        if condition is None:
            raise ValueError("GridEncoder(condition_dim > 0) needs a condition: forward(grid, condition)")
        hidden = cells
        for conv, film in zip((self.net[0], self.net[2]), self.film, strict=True):
            gamma, beta = film(condition)[:, :, None, None].chunk(2, dim=1)
            hidden = th.relu((1.0 + gamma) * conv(hidden) + beta)
        return self.net[4:](hidden)


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
        # A batch holds few distinct missions (one per episode, repeated at every step): read each once.
        missions, inverse = th.unique(tokens.long(), dim=0, return_inverse=True)
        # An empty mission (MiniGrid's Playground) still gets one (padding) step: packing refuses length 0.
        lengths = (missions != PAD_ID).sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(missions), lengths, batch_first=True, enforce_sorted=False)
        _, hidden = self.gru(packed)
        return hidden[-1][inverse]


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
    :param mission_conditioning: How the mission meets the grid: ``"concat"`` (their features side by side, for the
        core to combine) or ``"film"`` (the mission's features also scale and shift the grid's convolutions, as in
        BabyAI's agents, so the image features are already about the mission; see :class:`GridEncoder`).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        grid_embedding_dim: int = 8,
        image_features_dim: int = 128,
        word_embedding_dim: int = 32,
        mission_features_dim: int = 64,
        mission_conditioning: str = "concat",
    ) -> None:
        grid_space = require_key(observation_space, IMAGE_KEY, "MiniGridFeaturesExtractor")
        if not isinstance(grid_space, spaces.Box) or len(grid_space.shape) != 3 or is_image_space(grid_space):
            raise ValueError(
                f"observation_space[{IMAGE_KEY!r}]={grid_space}: MiniGridFeaturesExtractor needs the grid of ids as "
                "GridIdsWrapper declares it; build the env with make_meta_env or wrap it in GridIdsWrapper"
            )
        mission_space = observation_space.spaces.get(MISSION_KEY)
        if mission_conditioning not in MISSION_CONDITIONINGS:
            raise ValueError(f"mission_conditioning={mission_conditioning!r}: must be one of {MISSION_CONDITIONINGS}")
        if mission_conditioning == "film" and mission_space is None:
            raise ValueError(
                f"mission_conditioning='film': the observation space has no {MISSION_KEY!r} key to condition on "
                "(wrap the env in MissionTokenWrapper, or use 'concat')"
            )
        self.pass_through_keys = sorted(set(observation_space.spaces) - {IMAGE_KEY, MISSION_KEY})
        pass_through_dim = sum(get_flattened_obs_dim(observation_space[key]) for key in self.pass_through_keys)
        mission_dim = 0 if mission_space is None else mission_features_dim
        super().__init__(observation_space, image_features_dim + mission_dim + pass_through_dim)
        condition_dim = mission_features_dim if mission_conditioning == "film" else 0
        self.grid_encoder = GridEncoder(grid_space, grid_embedding_dim, image_features_dim, condition_dim)
        self.mission_encoder = None
        if mission_space is not None:
            vocabulary_size = int(np.max(mission_space.high)) + 1
            self.mission_encoder = MissionEncoder(vocabulary_size, word_embedding_dim, mission_features_dim)

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        if self.mission_encoder is None:
            features = [self.grid_encoder(observations[IMAGE_KEY])]
        else:
            mission = self.mission_encoder(observations[MISSION_KEY])
            condition = mission if self.grid_encoder.film is not None else None
            features = [self.grid_encoder(observations[IMAGE_KEY], condition), mission]
        features += [observations[key].flatten(start_dim=1).float() for key in self.pass_through_keys]
        return th.cat(features, dim=1)
