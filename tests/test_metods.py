"""The MetODS core (sb3_metarim.cores.metods) and MetODSPPO: shapes, state carry and resets, stability, options, SB3 API."""

import inspect
import math

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from sb3_metarim import MetaRIMPPO, MetODSPPO, make_meta_env
from sb3_metarim.cores import make_core
from sb3_metarim.cores.metods import MetODS, MetODSConfig
from sb3_metarim.meta_rim_ppo.policies import RIMActorCriticPolicy

SMALL = dict(num_neurons=6, recursions=2)
PPO_SMALL = dict(n_steps=16, batch_size=32, n_epochs=1)


def zero_state(core: MetODS, batch: int) -> tuple[th.Tensor, th.Tensor]:
    return th.zeros(1, batch, core.hidden_size), th.zeros(1, batch, core.hidden_size)


@pytest.fixture
def bandit_env():
    return make_meta_env("sb3_metarim/DependentBandit-v0", n_envs=2, seed=0, env_kwargs=dict(pulls_per_episode=10))


@pytest.mark.parametrize("num_neurons", [5, 8])
def test_shapes_and_the_state_layout(num_neurons):
    th.manual_seed(0)
    core = make_core("metods", 3, num_neurons=num_neurons, w0="learned")
    assert isinstance(core, MetODS) and core.num_layers == 1 and core.output_size == num_neurons
    assert core.hidden_size == math.ceil(num_neurons**2 / 2)
    output, (h, c) = core(th.randn(7, 4, 3), zero_state(core, 4))
    assert output.shape == (7, 4, num_neurons) and h.shape == c.shape == (1, 4, core.hidden_size)
    # h then c hold W - W0 row-major; an odd N pads c with one zero.
    with th.no_grad():
        core.w0.normal_()
    weights = th.randn(4, num_neurons, num_neurons)
    h, c = core.weights_to_state(weights)
    offset = (weights - core.w0).reshape(4, -1)
    assert th.allclose(th.cat((h[0], c[0]), -1)[:, : num_neurons**2], offset)
    if num_neurons % 2:
        assert th.all(c[0, :, -1] == 0)
    assert th.allclose(core.state_to_weights((h, c)), weights, atol=1e-6)
    # The zero state is W0.
    assert th.allclose(core.state_to_weights(zero_state(core, 2)), core.w0.expand(2, -1, -1))


def test_state_carries_and_one_call_equals_step_by_step():
    th.manual_seed(0)
    core = MetODS(3, num_neurons=6, recursions=3, w0="learned", write_projection=True)
    x = th.randn(12, 5, 3)
    starts = th.zeros(12, 5)
    starts[0] = 1
    starts[5, 2] = starts[9, 0] = 1
    output, state = core(x, zero_state(core, 5), starts)
    # Two calls carrying the state give the same as one.
    first, middle = core(x[:7], zero_state(core, 5), starts[:7])
    second, end = core(x[7:], middle, starts[7:])
    assert th.allclose(th.cat((first, second)), output, atol=1e-6)
    assert all(th.allclose(a, b, atol=1e-6) for a, b in zip(end, state, strict=True))
    # One step at a time.
    step_state, outputs = zero_state(core, 5), []
    for t in range(12):
        step_output, step_state = core(x[t : t + 1], step_state, starts[t : t + 1])
        outputs.append(step_output)
    assert th.allclose(th.cat(outputs), output, atol=1e-6)
    # The state changes from step to step (W is written).
    assert not th.allclose(state[0], zero_state(core, 5)[0])


@pytest.mark.parametrize("w0", ["zero", "learned"])
def test_episode_start_resets_w_to_w0(w0):
    th.manual_seed(0)
    core = MetODS(3, num_neurons=6, w0=w0)
    if core.w0 is not None:
        with th.no_grad():
            core.w0.normal_()
    x = th.randn(10, 3, 3)
    starts = th.zeros(10, 3)
    starts[6, 1] = 1
    output, _ = core(x, zero_state(core, 3), starts)
    fresh, _ = core(x[6:, 1:2], zero_state(core, 1))
    assert th.allclose(output[6:, 1:2], fresh, atol=1e-6)
    # The other envs carried their W on.
    carried, _ = core(x[6:, :1], core(x[:6, :1], zero_state(core, 1))[1])
    assert th.allclose(output[6:, :1], carried, atol=1e-6)
    assert not th.allclose(output[6:, :1], core(x[6:, :1], zero_state(core, 1))[0])


def test_sampled_w0_draws_at_each_episode_start():
    th.manual_seed(0)
    core = MetODS(3, num_neurons=6, w0="sampled", w0_std=0.5)
    x = th.randn(1, 2, 3).expand(1, 2, 3)
    out_a, _ = core(x, zero_state(core, 2), th.ones(1, 2))
    out_b, _ = core(x, zero_state(core, 2), th.ones(1, 2))
    assert not th.allclose(out_a, out_b)
    # Without a flag the zero state is the mean, zero: deterministic.
    assert th.equal(core(x, zero_state(core, 2))[0], core(x, zero_state(core, 2))[0])


@pytest.mark.parametrize(
    "options",
    [dict(), dict(recursions=4, write_projection=True, plasticity="scalar"), dict(recursions=1, w0="sampled", w0_std=10.0)],
)
def test_stable_over_a_2000_step_trial_with_large_inputs(options):
    """Bounded inputs and convex betas: W stays below max(|W0|, max write) however long the trial."""
    th.manual_seed(0)
    core = MetODS(4, num_neurons=16, **options)
    with th.no_grad():
        core.alpha.mul_(100.0)  # a strong plasticity
        core.kappa.mul_(3.0)
    x = 1e6 * th.randn(2000, 3, 4)
    starts = th.zeros(2000, 3)
    starts[0] = 1
    with th.no_grad():
        output, state = core(x, zero_state(core, 3), starts)
    weights = core.state_to_weights(state)
    assert th.isfinite(output).all() and th.isfinite(weights).all()
    kappa_bound = 1.0
    for s in range(core.recursions):  # |v(s)| <= sum_l |kappa_s(l)| max(|v(l)|, 1)
        kappa_bound = core.kappa[s, : s + 2].abs().sum().item() * max(kappa_bound, 1.0)
    write_bound = core.alpha.abs().max().item() * kappa_bound**2
    if core.write_projection is not None:
        write_bound *= core.write_projection.weight.abs().sum(-1).max().item()
    w0_bound = 10 * options.get("w0_std", 0.0)
    assert weights.abs().max().item() <= max(write_bound, w0_bound) + 1e-4
    assert output.abs().max().item() <= kappa_bound + 1e-4


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_neurons=2), r"num_neurons=2: must be an integer in 4\.\.256"),
        (dict(num_neurons=300), r"num_neurons=300: must be an integer in 4\.\.256"),
        (dict(num_neurons=8.0), r"num_neurons=8\.0: must be an integer in 4\.\.256"),
        (dict(recursions=0), r"recursions=0: must be an integer in 1\.\.4"),
        (dict(recursions=5), r"recursions=5: must be an integer in 1\.\.4"),
        (dict(w0="random"), r"w0='random': must be one of \('zero', 'learned', 'sampled'\)"),
        (dict(w0_std=0.0), r"w0_std=0\.0: must be a number in \(0, 10\]"),
        (dict(plasticity="row"), r"plasticity='row': must be one of \('synapse', 'neuron', 'scalar'\)"),
        (dict(write_projection=1), r"write_projection=1: must be True or False"),
        (dict(retention_init=1.0), r"retention_init=1\.0: must be a number in \(0, 1\)"),
    ],
)
def test_bad_options_are_clear_errors(options, message, bandit_env):
    with pytest.raises(ValueError, match=message):
        MetODSConfig(**options).validate()
    with pytest.raises(ValueError, match=message):
        MetODSPPO("MultiInputPolicy", bandit_env, policy_kwargs=options)


def test_gradient_reaches_the_plasticity_parameters():
    th.manual_seed(0)
    core = MetODS(3, num_neurons=6, recursions=2, w0="learned", write_projection=True)
    starts = th.zeros(5, 2)
    starts[0] = 1
    output, _ = core(th.randn(5, 2, 3), zero_state(core, 2), starts)
    output.square().sum().backward()
    for name, parameter in core.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # Unused kappa/beta entries (l > s) get none.
    assert core.kappa.grad[0, 2] == 0 and core.beta.grad[0, 2] == 0


def test_options_flow_from_the_config_through_the_policy(bandit_env, tmp_path):
    parameters = inspect.signature(RIMActorCriticPolicy).parameters
    assert {name: parameters[name].default for name in MetODSConfig.option_names()} == MetODSConfig().as_dict()
    model = MetODSPPO("MultiInputPolicy", bandit_env, policy_kwargs=dict(num_neurons=6, w0="learned"), **PPO_SMALL)
    policy = model.policy
    assert policy.core_config == MetODSConfig(num_neurons=6, w0="learned")
    assert policy.lstm_actor.config == policy.lstm_critic.config == policy.core_config
    assert policy.mlp_extractor.policy_net[0].in_features == 6 and policy.lstm_hidden_state_shape == (1, 1, 18)
    data = policy._get_constructor_parameters()
    assert data["recurrent_core"] == "metods" and {k: data[k] for k in MetODSConfig.option_names()} == policy.core_kwargs
    assert "num_units" not in data
    with pytest.raises(ValueError, match=r"top_k=2: an option of recurrent_core 'rim', not of .*'metods'"):
        MetODSPPO("MultiInputPolicy", bandit_env, policy_kwargs=dict(top_k=2))
    with pytest.raises(ValueError, match=r"num_neurons=8: an option of recurrent_core 'metods', not of recurrent_core='rim'"):
        MetaRIMPPO("MultiInputPolicy", bandit_env, policy_kwargs=dict(num_neurons=8))
    with pytest.raises(ValueError, match=r"recurrent_core.*='rim': metods_ppo has a MetODS core"):
        MetODSPPO("MultiInputPolicy", bandit_env, policy_kwargs=dict(recurrent_core="rim"))
    # No critic core: the critic's linear layer has the output width too.
    model = MetODSPPO("MultiInputPolicy", bandit_env, policy_kwargs=dict(num_neurons=6, enable_critic_lstm=False), **PPO_SMALL)
    assert model.policy.critic.out_features == 6
    model.learn(32)


def test_save_load_predict_with_state_and_evaluate(bandit_env, tmp_path):
    model = MetODSPPO("MultiInputPolicy", bandit_env, policy_kwargs=dict(SMALL, w0="learned"), seed=0, **PPO_SMALL)
    model.learn(64)
    model.save(tmp_path / "metods")
    loaded = MetODSPPO.load(tmp_path / "metods", device="cpu")
    assert loaded.policy.core_config == model.policy.core_config and not loaded.meta
    obs = bandit_env.reset()
    states = [None, None]
    starts = np.ones(2, dtype=bool)
    for _ in range(12):
        (a, states[0]), (b, states[1]) = (
            m.predict(obs, state=s, episode_start=starts, deterministic=True)
            for m, s in ((model, states[0]), (loaded, states[1]))
        )
        assert np.array_equal(a, b) and np.array_equal(states[0][0], states[1][0])
        obs, _, dones, _ = bandit_env.step(a)
        starts = dones
    assert states[0][0].shape == (1, 2, 18)
    mean, _ = evaluate_policy(loaded, bandit_env, n_eval_episodes=2)
    assert 0 <= mean <= 10


def test_meta_true_trains_the_plasticity_parameters_slow(bandit_env):
    model = MetODSPPO("MultiInputPolicy", bandit_env, meta=True, slow_interval=1, policy_kwargs=SMALL, **PPO_SMALL)
    slow = {id(p) for group in model.slow_optimizer.param_groups for p in group["params"]}
    named = dict(model.policy.named_parameters())
    assert {name for name, p in named.items() if id(p) in slow} == {
        f"lstm_{part}.{name}" for part in ("actor", "critic") for name in ("alpha", "kappa", "beta")
    }
    model.learn(32)


@pytest.mark.parametrize("num_neurons", [20, 32, 64])
def test_rollout_buffer_memory_per_env_is_8_n_squared(num_neurons, bandit_env):
    """Measured on the rollout buffer MetODSPPO allocates: (h, c) of actor and critic, float32, per step per env."""
    model = MetODSPPO("MultiInputPolicy", bandit_env, n_steps=8, batch_size=16, policy_kwargs=dict(num_neurons=num_neurons))
    buffer = model.rollout_buffer
    buffer.reset()
    arrays = (buffer.hidden_states_pi, buffer.cell_states_pi, buffer.hidden_states_vf, buffer.cell_states_vf)
    per_step_per_env = sum(array.nbytes for array in arrays) / (buffer.buffer_size * buffer.n_envs)
    assert per_step_per_env == 4 * 4 * math.ceil(num_neurons**2 / 2) == {20: 3200, 32: 8192, 64: 32768}[num_neurons]


class NoRewardInput(VecEnvWrapper):
    """Zeroes ``prev_reward``: Wang et al.'s control; without the reward an agent cannot learn within a trial."""

    def reset(self) -> dict:
        return self._hide(self.venv.reset())

    def step_wait(self) -> tuple:
        obs, rewards, dones, infos = self.venv.step_wait()
        return self._hide(obs), rewards, dones, infos

    @staticmethod
    def _hide(obs: dict) -> dict:
        return obs | {"prev_reward": np.zeros_like(obs["prev_reward"])}


def easy_bandits(n_envs: int, seed: int, pulls: int, reward_input: bool) -> VecEnv:
    env = make_meta_env("sb3_metarim/DependentBandit-v0", n_envs=n_envs, seed=seed, env_kwargs=dict(pulls_per_episode=pulls))
    return env if reward_input else NoRewardInput(env)


def bandit_score(model: MetODSPPO, reward_input: bool, pulls: int = 20, n_envs: int = 16) -> float:
    """Mean reward per pull over pulls 3..20 of 16 easy dependent-bandit trials (held-out seeds), deterministic."""
    env = easy_bandits(n_envs, 1000, pulls, reward_input)
    obs, state, starts, total = env.reset(), None, np.ones(n_envs, dtype=bool), np.zeros(n_envs)
    for t in range(pulls):
        actions, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, rewards, starts, _ = env.step(actions)
        total += rewards * (t >= 2)
    return float(total.mean() / (pulls - 2))


def test_metods_ppo_learns_the_easy_dependent_bandit_within_a_trial():
    """
    Easy dependent bandit (arms 0.1/0.9, 20 pulls a trial): chance earns 0.5 a pull, an agent that knows the arm 0.9.
    MetODSPPO (N=16, S=2, 9,600 steps, seed 0) must earn >= 0.65 a pull from the third pull on, learning which arm
    pays within each trial (it reaches about 0.72; untrained, 0.45). The control can fail: the same training without
    the previous reward as input (Wang et al.'s ablation) must stay below 0.6.
    """
    scores = {}
    for reward_input in (True, False):
        env = easy_bandits(8, 0, 20, reward_input)
        model = MetODSPPO(
            "MultiInputPolicy",
            env,
            n_steps=40,
            batch_size=80,
            n_epochs=4,
            learning_rate=3e-3,
            gamma=0.9,
            ent_coef=0.01,
            seed=0,
            policy_kwargs=dict(num_neurons=16, net_arch=[32]),
        )
        if reward_input:
            assert bandit_score(model, reward_input) < 0.6
        model.learn(9600)
        scores[reward_input] = bandit_score(model, reward_input)
    assert scores[True] >= 0.65 and scores[False] < 0.6, scores
