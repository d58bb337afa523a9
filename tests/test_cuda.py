"""
``device="cuda"`` end to end: the cores on the GPU compute what they compute on the CPU, and MetaRIMPPO, MetODSPPO
and a MiniGrid policy train, save, load, predict with state and evaluate there. Skipped, saying why, without a GPU.
"""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_metarim import MetaRIMPPO, MetODSPPO, make_meta_env
from sb3_metarim.common.torch_layers import MiniGridFeaturesExtractor
from sb3_metarim.cores import make_core

from .conftest import SMALL_CORE

pytestmark = pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False")

PPO_SMALL = dict(n_steps=16, batch_size=32, n_epochs=2, seed=0)


def deterministic_actions(model, obs: np.ndarray | dict, n_steps: int = 8) -> np.ndarray:
    """Deterministic actions along one observation, repeated, carrying the state from an episode start."""
    n_envs = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
    state, starts, actions = None, np.ones(n_envs, dtype=bool), []
    for _ in range(n_steps):
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros_like(starts)
        actions.append(action)
    return np.stack(actions)


@pytest.mark.parametrize(("name", "options"), [("rim", dict(SMALL_CORE)), ("metods", dict(num_neurons=8, recursions=2))])
def test_core_on_cuda_computes_what_it_computes_on_cpu(name, options):
    th.manual_seed(0)
    core = make_core(name, 5, **options)
    seq_len, batch = 7, 3
    inputs = th.randn(seq_len, batch, 5)
    state = (th.randn(1, batch, core.hidden_size), th.randn(1, batch, core.hidden_size))
    starts = th.zeros(seq_len, batch)
    starts[3, 1] = 1.0  # an episode start inside the sequence
    expected, (h, c) = core(inputs, state, starts)
    gpu = make_core(name, 5, **options).cuda()
    gpu.load_state_dict(core.state_dict())
    got, (gpu_h, gpu_c) = gpu(inputs.cuda(), tuple(s.cuda() for s in state), starts.cuda())
    assert got.device.type == "cuda"
    th.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)
    th.testing.assert_close(gpu_h.cpu(), h, atol=1e-4, rtol=1e-4)
    th.testing.assert_close(gpu_c.cpu(), c, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("meta", [True, False])
def test_metarim_trains_saves_loads_and_evaluates_on_cuda(cue_env, tmp_path, meta):
    kwargs = dict(meta=meta, slow_interval=1, policy_kwargs=dict(SMALL_CORE), device="cuda")
    model = MetaRIMPPO("MlpPolicy", cue_env, **kwargs, **PPO_SMALL)
    model.learn(64)
    assert all(param.device.type == "cuda" for param in model.policy.parameters())
    if meta:
        assert all(state["exp_avg"].device.type == "cuda" for state in model.slow_optimizer.state.values()), (
            "the slow optimizer's state lives on the GPU"
        )
    model.save(tmp_path / "model")
    obs = cue_env.reset()
    expected = deterministic_actions(model, obs)
    on_gpu = MetaRIMPPO.load(tmp_path / "model", env=cue_env, device="cuda")
    np.testing.assert_array_equal(deterministic_actions(on_gpu, obs), expected)
    on_cpu = MetaRIMPPO.load(tmp_path / "model", env=cue_env, device="cpu")
    assert all(param.device.type == "cpu" for param in on_cpu.policy.parameters())
    np.testing.assert_array_equal(deterministic_actions(on_cpu, obs), expected)
    mean, _ = evaluate_policy(on_gpu, cue_env, n_eval_episodes=4)
    assert np.isfinite(mean)
    on_gpu.learn(32, reset_num_timesteps=False)  # training goes on after a load, both optimizers on the GPU


def test_metods_trains_and_predicts_on_cuda():
    env = make_meta_env("sb3_metarim/DependentBandit-v0", n_envs=2, seed=0)
    model = MetODSPPO("MultiInputPolicy", env, policy_kwargs=dict(num_neurons=8), device="cuda", **PPO_SMALL)
    model.learn(64)
    assert deterministic_actions(model, env.reset()).shape == (8, 2)


def test_minigrid_policy_with_missions_trains_on_cuda():
    env = make_meta_env("BabyAI-GoToLocal-v0", n_envs=2, seed=0)
    policy_kwargs = dict(SMALL_CORE, features_extractor_class=MiniGridFeaturesExtractor)
    model = MetaRIMPPO("MultiInputPolicy", env, slow_interval=1, policy_kwargs=policy_kwargs, device="cuda", **PPO_SMALL)
    model.learn(64)
    assert deterministic_actions(model, env.reset()).shape == (8, 2)
