"""Missions as tokens, the grid as ids, the features extractor and make_meta_env on MiniGrid and BabyAI."""

import contextlib
import io

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from minigrid.core.constants import COLOR_NAMES
from minigrid.envs.babyai.core.verifier import LOC_NAMES, OBJ_TYPES
from minigrid.wrappers import FullyObsWrapper, RGBImgPartialObsWrapper
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import CombinedExtractor
from stable_baselines3.common.utils import obs_as_tensor

from sb3_metarim import MetaRIMPPO, MiniGridFeaturesExtractor, make_meta_env
from sb3_metarim.common.callbacks import TrialLogger
from sb3_metarim.envs.minigrid import (
    MAX_MISSION_LENGTH,
    MISSION_WORDS,
    PAD_ID,
    UNK_ID,
    VOCABULARY_SIZE,
    WORD_IDS,
    GridIdsWrapper,
    MissionTokenWrapper,
    tokenize_mission,
)

from .conftest import SMALL_CORE

BABYAI_LEVELS = sorted(env_id for env_id in gym.registry if env_id.startswith("BabyAI-"))
MINIGRID_ENVS = sorted(env_id for env_id in gym.registry if env_id.startswith("MiniGrid-"))
SEEDS_PER_LEVEL = 20
EXTRACTOR = dict(features_extractor_class=MiniGridFeaturesExtractor)


def test_tokenize_mission():
    tokens = tokenize_mission("Put the red ball next to a box, then open the door", max_length=16)
    words = "put the red ball next to a box then open the door".split()
    np.testing.assert_array_equal(tokens, [WORD_IDS[word] for word in words] + [PAD_ID] * 4)
    assert tokens.dtype == np.int64 and len(set(WORD_IDS.values())) == len(MISSION_WORDS)
    assert min(WORD_IDS.values()) == UNK_ID + 1 and max(WORD_IDS.values()) == VOCABULARY_SIZE - 1


def test_unknown_words_map_to_unk_or_raise_in_strict_mode():
    tokens = tokenize_mission("go to the shiny banana", max_length=6)
    assert list(tokens[3:]) == [UNK_ID, UNK_ID, PAD_ID]
    with pytest.raises(ValueError, match=r"mission='go to the shiny banana': unknown word\(s\) \['banana', 'shiny'\]"):
        tokenize_mission("go to the shiny banana", strict=True)


def test_too_long_missions_are_refused():
    with pytest.raises(ValueError, match=r"mission='go to the door': 4 words, longer than max_length=3"):
        tokenize_mission("go to the door", max_length=3)


def test_vocabulary_holds_the_babyai_grammar_names():
    assert set(COLOR_NAMES) | set(OBJ_TYPES) | set(LOC_NAMES) <= set(MISSION_WORDS)


@pytest.mark.parametrize("env_id", BABYAI_LEVELS)
def test_every_babyai_level_gives_in_vocabulary_tokens(env_id):
    env = MissionTokenWrapper(gym.make(env_id), strict=True)
    for seed in range(SEEDS_PER_LEVEL):
        # Some levels print their rejected samplings while they generate a mission.
        with contextlib.redirect_stdout(io.StringIO()):
            obs, _ = env.reset(seed=seed)
        assert env.observation_space["mission"].contains(obs["mission"])
        assert obs["mission"][0] != PAD_ID


@pytest.mark.parametrize("env_id", MINIGRID_ENVS)
def test_every_minigrid_env_gives_in_vocabulary_tokens(env_id):
    try:
        env = MissionTokenWrapper(gym.make(env_id), strict=True)
        missions = [env.reset(seed=seed)[0]["mission"] for seed in range(3)]
    except FileNotFoundError:
        # This minigrid wheel lacks the WFC envs' pattern images; their mission is a constant of the class.
        env_class = load_env_creator(gym.spec(env_id).entry_point)
        missions = [tokenize_mission(env_class._gen_mission(), strict=True)]
    assert all(np.isin(mission, np.arange(VOCABULARY_SIZE)).all() for mission in missions)


def test_grid_ids_wrapper_declares_the_ids_and_refuses_pixels():
    env = GridIdsWrapper(FullyObsWrapper(gym.make("MiniGrid-Empty-5x5-v0")))
    assert env.observation_space["image"].high.reshape(-1, 3).max(axis=0).tolist() == [10, 5, 3]
    obs, _ = env.reset(seed=0)
    for action in [0, 1, 1, 2]:  # the full view writes the agent's direction in its cell's state channel
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)
    with pytest.raises(ValueError, match=r"GridIdsWrapper needs a Dict observation with a 'image' key"):
        GridIdsWrapper(gym.make("sb3_metarim/CueMemory-v0"))
    grey = gym.Wrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    grey.observation_space = spaces.Dict(image=spaces.Box(0, 255, (7, 7), np.uint8))
    with pytest.raises(
        ValueError, match=r"observation_space\['image'\]=Box\(0, 255, \(7, 7\), uint8\): must be an \(H, W, 3\)"
    ):
        GridIdsWrapper(grey)
    pixels = GridIdsWrapper(RGBImgPartialObsWrapper(gym.make("MiniGrid-Empty-5x5-v0")))
    with pytest.raises(ValueError, match=r"has values above MiniGrid's \(object, colour, state\) ids"):
        pixels.reset(seed=0)


def test_mission_token_wrapper_needs_a_mission():
    with pytest.raises(ValueError, match=r"MissionTokenWrapper needs a Dict observation with a 'mission' key"):
        MissionTokenWrapper(gym.make("sb3_metarim/CueMemory-v0"))


def babyai_batch(env_id: str = "BabyAI-GoToLocalS6N2-v0", n_envs: int = 4) -> tuple:
    env = make_meta_env(env_id, n_envs=n_envs, episodes_per_trial=2, seed=0)
    observations = obs_as_tensor(env.reset(), th.device("cpu"))
    return env, preprocess_obs(observations, env.observation_space)


def test_features_extractor_reads_every_key():
    env, batch = babyai_batch()
    th.manual_seed(0)
    extractor = MiniGridFeaturesExtractor(env.observation_space)
    features = extractor(batch)
    # image 128 + mission 64 + direction 4 + first_step 1 + prev_action 7 + prev_reward 1
    assert features.shape == (4, 128 + 64 + 4 + 1 + 7 + 1) == (4, extractor.features_dim)
    for key in ["image", "mission", "direction", "prev_action", "prev_reward", "first_step"]:
        changed = dict(batch, **{key: batch[key].flip(0) if key in ("image", "mission") else batch[key] + 1.0})
        assert not th.allclose(extractor(changed)[0], features[0]), f"{key} does not change the features"


def test_mission_padding_does_not_change_its_features():
    env, _ = babyai_batch()
    encoder = MiniGridFeaturesExtractor(env.observation_space).mission_encoder
    mission = "go to the red ball"
    padded = encoder(th.as_tensor(tokenize_mission(mission, max_length=MAX_MISSION_LENGTH)[None]))
    th.testing.assert_close(padded, encoder(th.as_tensor(tokenize_mission(mission, max_length=5)[None])))
    batch = th.as_tensor(np.stack([tokenize_mission(mission), tokenize_mission("go to the red ball and open the door")]))
    in_batch = encoder(batch)
    th.testing.assert_close(in_batch[:1], padded)
    assert not th.allclose(in_batch[0], in_batch[1])
    empty = encoder(th.as_tensor(tokenize_mission("")[None]))
    assert th.isfinite(empty).all(), "an empty mission (Playground) still encodes"


def test_repeated_missions_are_read_once_with_the_same_features_and_gradients():
    env, _ = babyai_batch()
    encoder = MiniGridFeaturesExtractor(env.observation_space).mission_encoder
    missions = ["go to the red ball", "go to the blue key", "go to the red ball", "", "go to the red ball"]
    batch = th.as_tensor(np.stack([tokenize_mission(mission) for mission in missions]))
    together = encoder(batch)
    one_by_one = th.cat([encoder(row[None]) for row in batch])
    th.testing.assert_close(together, one_by_one)
    weights = th.randn_like(together)
    grad_together = th.autograd.grad((together * weights).sum(), encoder.gru.weight_ih_l0)[0]
    grad_one_by_one = th.autograd.grad((one_by_one * weights).sum(), encoder.gru.weight_ih_l0)[0]
    th.testing.assert_close(grad_together, grad_one_by_one)


def test_film_conditions_the_grid_features_on_the_mission():
    env, batch = babyai_batch()
    th.manual_seed(0)
    film = MiniGridFeaturesExtractor(env.observation_space, mission_conditioning="film")
    plain = MiniGridFeaturesExtractor(env.observation_space)
    # Same weights but for FiLM's, which start at zero: the untrained FiLM extractor is the plain one.
    plain.load_state_dict({name: value for name, value in film.state_dict().items() if ".film." not in name})
    th.testing.assert_close(film(batch), plain(batch))
    other_missions = dict(batch, mission=batch["mission"].roll(1, dims=0))
    assert not th.equal(batch["mission"], other_missions["mission"])
    image_dim = 128
    # Concatenation: the grid's features do not depend on the mission; FiLM: they do once its layers are trained.
    th.testing.assert_close(plain(other_missions)[:, :image_dim], plain(batch)[:, :image_dim])
    with th.no_grad():
        for layer in film.grid_encoder.film:
            layer.weight.normal_(0.0, 0.5)
    assert not th.allclose(film(other_missions)[:, :image_dim], film(batch)[:, :image_dim])
    assert film.features_dim == plain.features_dim


def test_mission_conditioning_is_checked():
    env, _ = babyai_batch()
    with pytest.raises(ValueError, match=r"mission_conditioning='sum': must be one of \('concat', 'film'\)"):
        MiniGridFeaturesExtractor(env.observation_space, mission_conditioning="sum")
    no_mission = spaces.Dict(image=env.observation_space["image"], direction=env.observation_space["direction"])
    with pytest.raises(ValueError, match=r"mission_conditioning='film': the observation space has no 'mission' key"):
        MiniGridFeaturesExtractor(no_mission, mission_conditioning="film")


def test_features_extractor_refuses_the_raw_minigrid_image():
    raw = MissionTokenWrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    with pytest.raises(ValueError, match=r"needs the grid of ids as GridIdsWrapper declares it"):
        MiniGridFeaturesExtractor(raw.observation_space)


def test_default_combined_extractor_runs_on_make_meta_env():
    env = make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=2, seed=0)
    model = MetaRIMPPO("MultiInputPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0, policy_kwargs=dict(SMALL_CORE))
    assert isinstance(model.policy.features_extractor, CombinedExtractor)
    model.learn(16)
    assert model.num_timesteps == 16


@pytest.mark.parametrize("conditioning", ["concat", "film"])
def test_babyai_level_trains_with_missions(tmp_path, conditioning):
    env = make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=4, episodes_per_trial=2, seed=0)
    model = MetaRIMPPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=64,
        n_epochs=2,
        slow_interval=1,
        seed=0,
        policy_kwargs=dict(EXTRACTOR, features_extractor_kwargs=dict(mission_conditioning=conditioning), **SMALL_CORE),
    )
    extractor = model.policy.features_extractor
    assert isinstance(extractor, MiniGridFeaturesExtractor)
    before = {name: param.clone() for name, param in extractor.named_parameters()}
    model.learn(3 * 4 * 32, callback=TrialLogger())
    assert model.num_timesteps == 384
    parts = ["grid_encoder.net", "mission_encoder.embedding", "mission_encoder.gru"]
    for part in parts + (["grid_encoder.film"] if conditioning == "film" else []):
        params = [name for name in before if name.startswith(part)]
        assert any(not th.equal(before[name], extractor.get_parameter(name)) for name in params), f"{part} did not train"

    model.save(tmp_path / "babyai")
    loaded = MetaRIMPPO.load(tmp_path / "babyai", env=env)
    assert isinstance(loaded.policy.features_extractor, MiniGridFeaturesExtractor)
    obs = env.reset()
    starts = np.ones(4, dtype=bool)
    expected, _ = model.predict(obs, episode_start=starts, deterministic=True)
    got, _ = loaded.predict(obs, episode_start=starts, deterministic=True)
    np.testing.assert_array_equal(expected, got)


def test_make_meta_env_refuses_bad_counts():
    with pytest.raises(ValueError, match=r"n_envs=0: must be a positive integer"):
        make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=0)
    with pytest.raises(ValueError, match=r"episodes_per_trial=0: must be a positive integer"):
        make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=1, episodes_per_trial=0)
