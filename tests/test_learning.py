"""Learning on a task that needs memory, with a fixed seed and a small budget."""

import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_metarim import MetaRIMPPO

CUE_TASK = dict(n_cues=3, delay=4)  # chance: 1/3 success
BUDGET = 30_000


@pytest.mark.parametrize(
    "variant, kwargs",
    [
        ("meta RIM", dict()),
        ("LSTM core", dict(meta=False, policy_kwargs=dict(recurrent_core="lstm"))),
    ],
)
def test_recalls_the_cue(variant, kwargs):
    env = make_vec_env("sb3_metarim/CueMemory-v0", n_envs=8, seed=0, env_kwargs=CUE_TASK)
    model = MetaRIMPPO("MlpPolicy", env, learning_rate=1e-3, n_steps=64, batch_size=128, n_epochs=4, seed=1, **kwargs)
    model.learn(BUDGET)
    eval_env = make_vec_env("sb3_metarim/CueMemory-v0", n_envs=4, seed=123, env_kwargs=CUE_TASK)
    success, _ = evaluate_policy(model, eval_env, n_eval_episodes=200, deterministic=True)
    assert success >= 0.9, f"{variant}: success {success:.3f} after {BUDGET} steps"
