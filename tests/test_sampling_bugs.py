"""
Two sampling bugs reported against sb3-contrib's ``RecurrentPPO``, checked on ``MetaRIMPPO``'s own sampling.

* sb3-contrib issue #239: the hidden state the buffer stores for the first step of an episode is the previous
  episode's final state (the collection loop stores the state it fed the policy, and the policy resets it only
  because that step is flagged ``episode_start``). Any path that starts from that stored state without applying the
  flag lets the previous episode leak into the new one. Checked: the stored state there is indeed the leaky one,
  yet what was collected at an episode start is what the zero state gives, and in every sampling mode (RecurrentPPO's,
  the fast phase's spans, the slow phase's whole rollout) a sampled sequence's outputs from an episode start on do
  not depend on the state it was handed.
* sb3-contrib issue #284 (and the open PR #290): a sequence must be cut where the env changes, so that a padded
  sequence never carries one env's state into another env's steps, and it must start from the state stored for its
  first step, reset only if that step starts an episode (PR #290 would also reset at every env change: with the fast
  phase's spans, whose boundaries travel in the same ``env_change`` slot, every span would then start from zeros). Checked:
  every sampled sequence holds consecutive steps of one env, starts from the state stored for that step, carries the
  stored episode-start flags, and re-evaluating the freshly collected rollout with the unchanged policy gives back
  the log-probabilities and values recorded during collection (also through ``refresh_log_probs``).

The situation is built on purpose: two envs whose episodes last 3 and 5 steps, ``n_steps=8`` and ``fast_span=4``;
the checked rollout is the second one, so that each env's first step continues an episode with a non-zero state.
In that rollout env 0 starts episodes at rows 1, 4 (a span boundary) and 7, env 1 at rows 2 and 7; rows 0 (an env
change) and, for env 1, 4 (a span boundary) are in the middle of an episode.
"""

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples, RNNStates
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_metarim import MetaRIMPPO

EPISODE_LENGTHS = (3, 5)
N_STEPS = 8
FAST_SPAN = 4
# Rows of the checked (second) rollout whose step starts an episode, per env.
EPISODE_START_ROWS = ([1, 4, 7], [2, 7])
CORES = {"rim": {}, "lstm": {"recurrent_core": "lstm"}}
# (span, batch_size): RecurrentPPO's sampling on the whole buffer, the fast phase's spans (3 of the 4 blocks per
# minibatch, so one minibatch holds both envs' blocks), the slow phase's rollouts.
SAMPLINGS = {"recurrent_ppo": (None, None), "fast_spans": (FAST_SPAN, 3 * FAST_SPAN), "slow_rollouts": (N_STEPS, None)}
STATE_NAMES = ("hidden_states_pi", "cell_states_pi", "hidden_states_vf", "cell_states_vf")
# Re-evaluating the rollout differs from collection by float rounding (< 1e-6); the bugs move a log-prob by > 1e-4.
ATOL = 1e-5


class FixedLengthEnv(gym.Env):
    """Episodes of exactly ``length`` steps; the observation names the env and counts its steps since creation."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, env_id: int, length: int) -> None:
        self.env_id, self.length = env_id, length
        self.total_steps, self.episode_step = 0, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.env_id, self.total_steps, 0.1 * self.episode_step], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.episode_step = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.total_steps += 1
        self.episode_step += 1
        return self._obs(), float(action), self.episode_step == self.length, False, {}


class Collected:
    """A model whose buffer holds its second rollout (nothing trained), and copies of that rollout's arrays."""

    def __init__(self, core: str) -> None:
        env = DummyVecEnv([lambda i=i, length=length: FixedLengthEnv(i, length) for i, length in enumerate(EPISODE_LENGTHS)])
        self.model = MetaRIMPPO("MlpPolicy", env, n_steps=N_STEPS, fast_span=FAST_SPAN, seed=0, policy_kwargs=CORES[core])
        _, callback = self.model._setup_learn(2 * N_STEPS * env.num_envs, None)
        callback.on_training_start(locals(), globals())
        for _ in range(2):
            assert self.model.collect_rollouts(env, callback, self.model.rollout_buffer, n_rollout_steps=N_STEPS)
        buffer = self.model.rollout_buffer
        # (n_steps, n_envs, ...); the states as (n_steps, n_envs, n_layers, hidden). Sampling flattens the buffer.
        self.obs = buffer.observations.copy()
        self.actions = buffer.actions.copy()
        self.episode_starts = buffer.episode_starts.copy()
        self.log_probs, self.values = buffer.log_probs.copy(), buffer.values.copy()
        self.states = {name: getattr(buffer, name).swapaxes(1, 2).copy() for name in STATE_NAMES}
        self.model.policy.set_training_mode(True)  # as in train(): the cores run as they do there

    def samples(self, sampling: str) -> list[RecurrentRolloutBufferSamples]:
        span, batch_size = SAMPLINGS[sampling]
        np.random.seed(1)  # the fast phase's first minibatch: env 1's rows 4-7 and 0-3, then env 0's rows 0-3
        return list(self.model.rollout_buffer.get(batch_size, span=span))

    def evaluate(self, samples: RecurrentRolloutBufferSamples, states: RNNStates) -> tuple[th.Tensor, th.Tensor]:
        """:return: the policy's log-probabilities and values on the padded ``samples``, from ``states``."""
        with th.no_grad():
            values, log_prob, _ = self.model.policy.evaluate_actions(
                samples.observations, self.model._actions(samples), states, samples.episode_starts
            )
        return log_prob, values.flatten()


@pytest.fixture(scope="module", params=sorted(CORES))
def collected(request: pytest.FixtureRequest) -> Collected:
    th.set_num_threads(1)
    return Collected(request.param)


def sequences(samples: RecurrentRolloutBufferSamples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:return: per padded step, laid out (n_seq, max_length): its env, its row in the rollout, and the mask."""
    n_seq = samples.lstm_states.pi[0].shape[1]
    obs = samples.observations.reshape(n_seq, -1, 3).cpu().numpy()
    mask = samples.mask.reshape(n_seq, -1).cpu().numpy() > 0.5
    return obs[..., 0].astype(int), obs[..., 1].astype(int) - N_STEPS, mask


def test_the_situation_is_the_intended_one(collected: Collected) -> None:
    for env, rows in enumerate(EPISODE_START_ROWS):
        assert np.flatnonzero(collected.episode_starts[:, env]).tolist() == rows
        assert (collected.obs[:, env, 1] == N_STEPS + np.arange(N_STEPS)).all()
        # What sb3-contrib issue #239 describes: the state stored at an episode start is the last episode's.
        for row in rows:
            assert np.abs(collected.states["hidden_states_pi"][row, env]).max() > 1e-3
    # Each env's first step continues an episode from a non-zero state.
    assert not collected.episode_starts[0].any()
    assert (np.abs(collected.states["hidden_states_pi"][0]).max(axis=(1, 2)) > 1e-3).all()


@pytest.mark.parametrize("sampling", sorted(SAMPLINGS))
def test_episode_start_state_never_leaks_into_the_next_episode(collected: Collected, sampling: str) -> None:
    """sb3-contrib issue #239."""
    policy = collected.model.policy
    # Collection: what was recorded at each episode start is what the policy gives from the zero state.
    for env, rows in enumerate(EPISODE_START_ROWS):
        for row in rows:
            zeros = th.zeros((1, 1, collected.states["hidden_states_pi"].shape[-1]))
            with th.no_grad():
                values, log_prob, _ = policy.evaluate_actions(
                    th.as_tensor(collected.obs[row, env][None]),
                    th.as_tensor(collected.actions[row, env]).long(),
                    RNNStates((zeros, zeros), (zeros, zeros)),
                    th.zeros(1),
                )
            assert log_prob.item() == pytest.approx(collected.log_probs[row, env], abs=ATOL)
            assert values.item() == pytest.approx(collected.values[row, env], abs=ATOL)

    # Training: from an episode start on, a sampled sequence's outputs ignore the state it was handed.
    generator = th.Generator().manual_seed(0)
    checked = 0
    for samples in collected.samples(sampling):
        noise = RNNStates(*(tuple(th.randn(s.shape, generator=generator) for s in pair) for pair in samples.lstm_states))
        log_prob, values = collected.evaluate(samples, samples.lstm_states)
        noisy_log_prob, noisy_values = collected.evaluate(samples, noise)
        env, row, mask = sequences(samples)
        # Which padded steps start an episode, from the rollout itself (not from the samples' flags).
        starts = collected.episode_starts[row.clip(0), env] * mask
        assert not starts[:, 1:].any(), "a sampled sequence is not cut at an episode start"
        same = th.isclose(log_prob, noisy_log_prob, atol=1e-6) & th.isclose(values, noisy_values, atol=1e-6)
        same = same.reshape(mask.shape).cpu().numpy()
        for seq in range(mask.shape[0]):
            if starts[seq, 0]:
                assert same[seq][mask[seq]].all(), "the state handed to a sequence leaks past its episode start"
                checked += 1
            else:
                assert not same[seq, 0], "the handed state should matter in the middle of an episode"
    assert checked >= 3


@pytest.mark.parametrize("sampling", sorted(SAMPLINGS))
def test_sampled_sequences_never_mix_envs(collected: Collected, sampling: str) -> None:
    """sb3-contrib issue #284."""
    cut_needed = False
    for samples in collected.samples(sampling):
        env, row, mask = sequences(samples)
        starts = samples.episode_starts.reshape(mask.shape).cpu().numpy()
        first_rows = []
        for seq in range(mask.shape[0]):
            valid = mask[seq]
            assert valid[: valid.sum()].all(), "padding only at the end of a sequence"
            seq_env, seq_rows = env[seq][valid], row[seq][valid]
            assert (seq_env == seq_env[0]).all(), f"one sequence holds steps of envs {sorted(set(seq_env))}"
            assert (np.diff(seq_rows) == 1).all(), f"a sequence's steps are not consecutive: rows {seq_rows}"
            first_rows.append((seq_env[0], seq_rows[0]))
            # The flags are the stored ones: an env change or a span boundary is not an episode start.
            stored_starts = collected.episode_starts[seq_rows, seq_env[0]]
            assert (starts[seq][valid] == stored_starts).all(), "the sampled episode-start flags are not the stored ones"
        # A sequence of one env follows one of the other env in the minibatch, and does not start an episode.
        cut_needed |= any(
            e != previous and not collected.episode_starts[r, e] for (previous, _), (e, r) in itertools.pairwise(first_rows)
        )
        # Each sequence starts from the state stored for its first step, in that env.
        for name, pair, part in zip(STATE_NAMES, ("pi", "pi", "vf", "vf"), (0, 1, 0, 1), strict=True):
            handed = getattr(samples.lstm_states, pair)[part].cpu().numpy().swapaxes(0, 1)
            stored = np.stack([collected.states[name][r, e] for e, r in first_rows])
            np.testing.assert_array_equal(handed, stored)
        # End to end: the unchanged policy re-evaluates the rollout as it was collected.
        log_prob, values = collected.evaluate(samples, samples.lstm_states)
        flat_mask = samples.mask > 0.5
        np.testing.assert_allclose(log_prob[flat_mask], samples.old_log_prob[flat_mask], atol=ATOL, rtol=0)
        np.testing.assert_allclose(values[flat_mask], samples.old_values[flat_mask], atol=ATOL, rtol=0)
    # So without the cut at the env change one sequence would have carried an env's state into the other's steps.
    assert cut_needed


def test_refreshing_log_probs_with_the_collecting_policy_changes_nothing(collected: Collected) -> None:
    """sb3-contrib issue #284, through the slow phase's whole-rollout pass (``refresh_log_probs``)."""
    buffer = collected.model.rollout_buffer
    collected.samples("slow_rollouts")  # flattens the buffer
    buffer.log_probs = buffer.swap_and_flatten(collected.log_probs.copy())
    with th.no_grad():
        buffer.refresh_log_probs(collected.model._log_prob, span=N_STEPS, batch_size=None)
    refreshed, buffer.log_probs = buffer.log_probs, buffer.swap_and_flatten(collected.log_probs.copy())
    np.testing.assert_allclose(refreshed, buffer.log_probs, atol=ATOL, rtol=0)
