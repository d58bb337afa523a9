"""MetaRIMPPO: RecurrentPPO with a RIM core, trained on a fast and a slow timescale."""

import copy
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, explained_variance, update_learning_rate
from torch import nn

from sb3_metarim.common.buffers import SpanSamplingDictRolloutBuffer, SpanSamplingRolloutBuffer
from sb3_metarim.cores.registry import default_slow_parameters
from sb3_metarim.cores.rim import RIM, ModuleActivity, active_steps
from sb3_metarim.meta_rim_ppo.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, RIMActorCriticPolicy
from sb3_metarim.version import __version__

SelfMetaRIMPPO = TypeVar("SelfMetaRIMPPO", bound="MetaRIMPPO")

# Steps per forward pass when the slow phase re-computes the log-probabilities (no gradients are kept): the whole
# buffer of the zoo's 16 envs x 128 steps in one pass, while an image observation's activations stay bounded.
REFRESH_BATCH_STEPS = 2048


class NonFiniteLossError(FloatingPointError, ValueError):
    """
    A training loss turned NaN or infinite: training stopped before the optimizer step that would apply it. A
    ``ValueError`` too, so that rl-zoo3's tuning prunes such a trial as it prunes others whose training diverged.
    """


class MetaRIMPPO(RecurrentPPO):
    """
    Recurrent PPO with a RIM core and fast/slow training (Madan et al. 2021).

    Every ``RecurrentPPO`` argument works the same way. With ``meta=True`` each ``train()`` runs
    ``n_epochs`` fast epochs that update only the fast parameters, on spans of at most
    ``fast_span`` steps that start from the stored hidden states, then, every ``slow_interval``
    rollouts, ``slow_n_epochs`` slow epochs that update only the slow parameters (by default the input
    and communication attention) on each env's full rollout. The two sets have their own optimizer,
    learning rate (schedule) and gradient clipping. With ``meta=False`` all parameters are trained
    together exactly as ``RecurrentPPO`` trains them (the "modular" baseline).

    Logged: the fast phase (or the only phase) under RecurrentPPO's keys, computed as RecurrentPPO computes
    them (``train/approx_kl`` over the last epoch, ``train/loss`` of the last minibatch, the other losses over
    every minibatch), plus ``train/approx_kl_mean`` and ``train/loss_mean`` over every minibatch; the slow
    phase the same under ``train/slow_*``; the fraction of steps each RIM module was active under
    ``rim/active_rate_unit<i>`` (with ``n_lstm_layers`` RIMs, layer by layer: module ``m`` of layer ``l`` is unit
    ``l * num_units + m``); and, on one training minibatch, the fraction of steps whose set of active
    modules the update changed under ``rim/active_set_changed`` (hard top-k selection can flip, and a policy
    that relies on it can drop suddenly).

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class.
        Core options (``recurrent_core``, ``num_units``, ``top_k``, ``unit_size``, ``cell``, ...)
        go in ``policy_kwargs``; see :class:`~sb3_metarim.meta_rim_ppo.policies.RIMActorCriticPolicy`.
    :param env: The environment to learn from (if registered in Gym, can be str).
    :param learning_rate: Learning rate of the fast set (all parameters with ``meta=False``),
        float or schedule of the progress remaining (1 to 0).
    :param n_steps: Steps per env per rollout.
    :param batch_size: Minibatch size in steps.
    :param n_epochs: Epochs of the fast phase (of the only phase with ``meta=False``).
    :param gamma: Discount factor.
    :param gae_lambda: GAE lambda.
    :param clip_range: PPO clipping parameter, float or schedule.
    :param clip_range_vf: Value-function clipping parameter, float, schedule or ``None``.
    :param normalize_advantage: Whether to normalize the advantage per minibatch.
    :param ent_coef: Entropy coefficient.
    :param vf_coef: Value-function coefficient.
    :param max_grad_norm: Maximum gradient norm, applied to each set's own parameters.
    :param use_sde: Whether to use generalized State Dependent Exploration.
    :param sde_sample_freq: Sample a new gSDE noise matrix every n steps (-1: only at rollout start).
    :param target_kl: Early-stop a phase's epochs when the approximate KL exceeds 1.5 times this. Each phase
        measures the KL from the policy at its own start: the fast phase from the collecting policy (as
        ``RecurrentPPO``), the slow phase from the policy the fast phase left (its log-probabilities are
        recomputed first, so its ratio is clipped around that policy too).
    :param stats_window_size: Window of episodes for the rollout statistics.
    :param tensorboard_log: TensorBoard log folder (``None``: no TensorBoard).
    :param policy_kwargs: Arguments of the policy.
    :param verbose: 0 no output, 1 info, 2 debug.
    :param seed: Seed of the random generators.
    :param device: Torch device.
    :param meta: Train on two timescales (fast and slow); ``False`` trains everything together, and the
        ``fast_span`` and ``slow_*`` arguments are unused.
    :param fast_span: Longest sequence (steps) the fast phase backpropagates through. Why this default:
        :ref:`why-fast-slow-schedule`.
    :param slow_interval: Rollouts between slow phases (1: after every rollout). Why this default:
        :ref:`why-fast-slow-schedule`.
    :param slow_n_epochs: Epochs of each slow phase. Why this default: :ref:`why-fast-slow-schedule`.
    :param slow_learning_rate: Learning rate of the slow set, float or schedule. Why this default:
        :ref:`why-fast-slow-schedule`.
    :param slow_max_kl: Reject a slow phase whose step moved the policy too far: after it, the approximate KL
        between the policy before and after it is measured on the whole rollout (one pass without gradients), and
        above this value the slow parameters and the slow optimizer's state go back to where they were before it
        (logged as ``train/slow_rollout_kl`` and ``train/slow_rejected``). A hard top-k selection makes the policy a
        discontinuous function of the attention weights, so a small slow step can flip which modules answer and
        collapse a learned policy; ``target_kl`` only stops after such a step. ``None``: never rejected (the paper's
        scheme). Default 0.05: on the memory suite it undid only the rare slow phases that moved the policy by a KL
        of about 0.8 or more, and kept a learned policy from collapsing. Why this default: :ref:`why-slow-max-kl`.
    :param slow_parameters: Regular expressions (``re.search``) over ``policy.named_parameters()``
        names selecting the slow set. ``None`` (default): the core's default slow set
        (:func:`sb3_metarim.cores.default_slow_parameters`): the RIM's attention weights
        (``("input_attention", "communication_attention")``), an LSTM core's value function
        (``("value_net", "lstm_critic")``, the paper's meta-LSTM split), MetODS's plasticity parameters.
    :param _init_setup_model: Whether to build the network at creation.

    A training loss that turns NaN or infinite raises :class:`NonFiniteLossError` before the optimizer step, so
    the parameters (and any checkpoint saved so far) are the last good ones. NaN or infinite observations and
    rewards from the env: wrap it in SB3's ``VecCheckNan(env, raise_exception=True)``.

    A saved model records the package version (``sb3_metarim_version``); loading a file saved by another minor
    version warns, naming both.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }

    def __init__(
        self,
        policy: str | type[RIMActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 128,
        batch_size: int | None = 128,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        meta: bool = True,
        fast_span: int = 16,
        slow_interval: int = 2,
        slow_n_epochs: int = 1,
        slow_learning_rate: float | Schedule = 1e-4,
        slow_parameters: Sequence[str] | None = None,
        slow_max_kl: float | None = 0.05,
        _init_setup_model: bool = True,
    ):
        check_meta_arguments(meta, fast_span, slow_interval, slow_n_epochs, slow_learning_rate, slow_parameters, slow_max_kl)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.meta = meta
        self.fast_span = fast_span
        self.slow_interval = slow_interval
        self.slow_n_epochs = slow_n_epochs
        self.slow_learning_rate = slow_learning_rate
        self.slow_parameters = None if slow_parameters is None else list(slow_parameters)
        self.slow_max_kl = slow_max_kl
        self.slow_optimizer: th.optim.Optimizer | None = None
        self._n_rollouts_trained = 0
        self.sb3_metarim_version = __version__
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, RIMActorCriticPolicy):
            raise ValueError(
                f"policy={type(self.policy).__name__}: MetaRIMPPO needs a RIMActorCriticPolicy (or a subclass); "
                "a RecurrentPPO model loads with sb3_contrib.RecurrentPPO.load"
            )
        buffer_class = (
            SpanSamplingDictRolloutBuffer if isinstance(self.observation_space, spaces.Dict) else SpanSamplingRolloutBuffer
        )
        self.rollout_buffer = buffer_class(
            self.n_steps,
            self.observation_space,
            self.action_space,
            self.rollout_buffer.hidden_state_shape,
            self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
        )
        self.slow_lr_schedule = FloatSchedule(self.slow_learning_rate)
        if self.slow_parameters is None:
            core = self.policy.recurrent_core
            default = default_slow_parameters(core)
            if default is None and self.meta:
                raise ValueError(
                    f"slow_parameters=None: recurrent_core={core!r} was registered without a default slow set; "
                    "pass slow_parameters (patterns over the policy's parameter names)"
                )
            self.slow_parameters = list(default or ())
        if self.meta:
            self._split_optimizers()

    def _split_optimizers(self) -> None:
        """Give the fast and the slow parameters an optimizer each; ``policy.optimizer`` is the fast one."""
        named = list(self.policy.named_parameters())
        patterns = [re.compile(pattern) for pattern in self.slow_parameters]
        is_slow = [any(p.search(name) for p in patterns) for name, _ in named]
        if not any(is_slow):
            raise ValueError(
                f"slow_parameters={self.slow_parameters!r}: matches no parameter of the policy "
                f"(names look like {[name for name, _ in named[:6]]}); pass patterns that select the slow set"
            )
        if all(is_slow):
            raise ValueError(
                f"slow_parameters={self.slow_parameters!r}: matches every parameter, so the fast set is empty; "
                "use meta=False to train all parameters on one timescale"
            )
        policy = self.policy
        fast = [param for (_, param), slow in zip(named, is_slow, strict=True) if not slow]
        slow = [param for (_, param), slow in zip(named, is_slow, strict=True) if slow]
        policy.optimizer = policy.optimizer_class(fast, lr=self.lr_schedule(1), **policy.optimizer_kwargs)
        self.slow_optimizer = policy.optimizer_class(slow, lr=self.slow_lr_schedule(1), **policy.optimizer_kwargs)

    def train(self) -> None:
        """Fast phase (or the only phase with ``meta=False``), then the slow phase when it is due."""
        self.policy.set_training_mode(True)
        progress = self._current_progress_remaining
        clip_range = self.clip_range(progress)
        clip_range_vf = None if self.clip_range_vf is None else self.clip_range_vf(progress)
        self._n_rollouts_trained += 1
        activity = ModuleActivity()

        fast_span = self.fast_span if self.meta else None
        # One minibatch to measure how the update changes the RIM's top-k selection (a cause of sudden drops).
        probe = next(self.rollout_buffer.get(self.batch_size, span=fast_span))
        selection_before = self._actor_selection(probe)
        fast = self._train_phase(
            self.policy.optimizer, self.lr_schedule(progress), self.n_epochs, fast_span, clip_range, clip_range_vf, activity
        )
        self._record(fast, self.lr_schedule(progress), prefix="")
        if self.meta and self._n_rollouts_trained % self.slow_interval == 0:
            # The fast phase has moved the policy: centre the slow phase's clipping and KL on where it is now.
            with th.no_grad():
                # No graph is kept, so many sequences can share a pass: fewer, larger steps through the core.
                refresh_batch = max(self.batch_size, REFRESH_BATCH_STEPS)
                self.rollout_buffer.refresh_log_probs(self._log_prob, span=self.n_steps, batch_size=refresh_batch)
            slow_lr = self.slow_lr_schedule(progress)
            before = self._slow_snapshot() if self.slow_max_kl is not None else None
            slow = self._train_phase(
                self.slow_optimizer, slow_lr, self.slow_n_epochs, self.n_steps, clip_range, clip_range_vf, activity
            )
            self._record(slow, slow_lr, prefix="slow_")
            if before is not None:
                self._reject_far_slow_step(before, refresh_batch)

        for unit, rate in enumerate(activity.rates()):
            self.logger.record(f"rim/active_rate_unit{unit}", rate)
        if selection_before is not None:
            changed = (selection_before != self._actor_selection(probe)).any(dim=-1).float().mean().item()
            self.logger.record("rim/active_set_changed", changed)
        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)

    def _slow_params(self) -> list[th.Tensor]:
        """:return: the slow set's parameters, in the slow optimizer's order."""
        return [param for group in self.slow_optimizer.param_groups for param in group["params"]]

    def _slow_snapshot(self) -> tuple[list[th.Tensor], dict[str, Any]]:
        """:return: copies of the slow parameters and of the slow optimizer's state."""
        return [param.detach().clone() for param in self._slow_params()], copy.deepcopy(self.slow_optimizer.state_dict())

    def _reject_far_slow_step(self, before: tuple[list[th.Tensor], dict[str, Any]], batch_size: int) -> None:
        """
        Measure how far the slow phase moved the policy on the whole rollout; beyond ``slow_max_kl``, put the slow
        parameters and optimizer back to ``before`` (:meth:`_slow_snapshot`, taken just before the phase).
        """
        # The buffer holds the log-probabilities of the policy the slow phase started from (refreshed for it).
        old_log_probs = self.rollout_buffer.log_probs.copy()
        with th.no_grad():
            self.rollout_buffer.refresh_log_probs(self._log_prob, span=self.n_steps, batch_size=batch_size)
        log_ratio = self.rollout_buffer.log_probs - old_log_probs
        rollout_kl = float(np.mean(np.expm1(log_ratio) - log_ratio))
        rejected = rollout_kl > self.slow_max_kl
        if rejected:
            params, optimizer_state = before
            with th.no_grad():
                for param, saved in zip(self._slow_params(), params, strict=True):
                    param.copy_(saved)
            self.slow_optimizer.load_state_dict(optimizer_state)
            if self.verbose >= 1:
                print(f"Slow phase rejected: its approximate KL on the rollout is {rollout_kl:.3f} > {self.slow_max_kl}")
        self.logger.record("train/slow_rollout_kl", rollout_kl)
        self.logger.record("train/slow_rejected", float(rejected))

    def _train_phase(
        self,
        optimizer: th.optim.Optimizer,
        learning_rate: float,
        n_epochs: int,
        span: int | None,
        clip_range: float,
        clip_range_vf: float | None,
        activity: "ModuleActivity",
    ) -> dict[str, list[float]]:
        """
        PPO epochs that update only ``optimizer``'s parameters, on sequences of at most ``span`` steps.

        :return: statistics to log, as ``RecurrentPPO`` logs them: per-minibatch values of every epoch, except
            ``approx_kl`` (the last epoch's minibatches) and ``loss`` (the last minibatch); ``approx_kl_mean`` and
            ``loss_mean`` hold every minibatch's.
        """
        update_learning_rate(optimizer, learning_rate)
        params = [param for group in optimizer.param_groups for param in group["params"]]
        stats: dict[str, list[float]] = defaultdict(list)
        with trainable_only(self.policy, params):
            for epoch in range(n_epochs):
                continue_training = True
                epoch_kls = []
                for rollout_data in self.rollout_buffer.get(self.batch_size, span=span):
                    loss, approx_kl = self._ppo_loss(rollout_data, clip_range, clip_range_vf, stats, activity)
                    epoch_kls.append(approx_kl)
                    stats["loss"] = [loss.item()]
                    if not math.isfinite(stats["loss"][0]):
                        raise self._non_finite_loss(optimizer, stats)
                    if self.target_kl is not None and approx_kl > 1.5 * self.target_kl:
                        continue_training = False
                        if self.verbose >= 1:
                            print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl:.2f}")
                        break
                    # Zero every gradient, not just this set's: stale ones would leak into the next phase.
                    self.policy.zero_grad(set_to_none=True)
                    loss.backward()
                    th.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                    optimizer.step()
                self._n_updates += 1
                stats["approx_kl"] = epoch_kls
                if not continue_training:
                    break
        return stats

    def _non_finite_loss(self, optimizer: th.optim.Optimizer, stats: dict[str, list[float]]) -> NonFiniteLossError:
        phase = "slow" if optimizer is self.slow_optimizer else "fast"
        terms = ", ".join(f"{key}={stats[key][-1]:.4g}" for key in ("policy_gradient_loss", "value_loss", "entropy_loss"))
        return NonFiniteLossError(
            f"the {phase} phase's loss is {stats['loss'][0]} (update {self._n_updates}, num_timesteps={self.num_timesteps}; "
            f"{terms}): training stopped before the optimizer step, so the parameters, and the checkpoints saved so far, "
            "are the last good ones. Check the rewards' and observations' scale (VecNormalize), the learning rates and "
            "max_grad_norm"
        )

    @classmethod
    def load(cls: type[SelfMetaRIMPPO], path: Any, env: GymEnv | None = None, **kwargs: Any) -> SelfMetaRIMPPO:
        """SB3's ``load``; a file saved by another minor version of sb3-metarim is loaded with a warning naming both."""
        model = super().load(path, env=env, **kwargs)
        saved, current = getattr(model, "sb3_metarim_version", "unknown"), __version__
        if saved.split(".")[:2] != current.split(".")[:2]:
            warnings.warn(
                f"{path}: saved by sb3-metarim {saved}, loaded by {current}: defaults and saved arguments may differ "
                "between minor versions (CHANGELOG.md)",
                stacklevel=2,
            )
        model.sb3_metarim_version = current
        return model

    def _actor_selection(self, samples: RecurrentRolloutBufferSamples) -> th.Tensor | None:
        """:return: the actor RIM's active modules (valid steps x modules) on ``samples``; ``None`` without a RIM."""
        core = self.policy.lstm_actor
        if not isinstance(core, RIM):
            return None
        with th.no_grad():
            self.policy.get_distribution(samples.observations, samples.lstm_states.pi, samples.episode_starts)
        return active_steps(core, samples.mask > 1e-8)

    def _log_prob(self, samples: RecurrentRolloutBufferSamples) -> th.Tensor:
        """:return: the current policy's log-probability of each padded step's action (the actor alone)."""
        distribution, _ = self.policy.get_distribution(samples.observations, samples.lstm_states.pi, samples.episode_starts)
        return distribution.log_prob(self._actions(samples))

    def _actions(self, samples: RecurrentRolloutBufferSamples) -> th.Tensor:
        return samples.actions.long().flatten() if isinstance(self.action_space, spaces.Discrete) else samples.actions

    def _ppo_loss(
        self,
        rollout_data: RecurrentRolloutBufferSamples,
        clip_range: float,
        clip_range_vf: float | None,
        stats: dict[str, list[float]],
        activity: "ModuleActivity",
    ) -> tuple[th.Tensor, float]:
        """RecurrentPPO's clipped loss on one padded minibatch; appends to ``stats``. :return: loss, approx KL."""
        # Restated from RecurrentPPO.train, which computes it inline in its single-optimizer loop (no function to
        # call); both phases need it on their own minibatches, spans and optimizers.
        actions = self._actions(rollout_data)
        mask = rollout_data.mask > 1e-8
        values, log_prob, entropy = self.policy.evaluate_actions(
            rollout_data.observations, actions, rollout_data.lstm_states, rollout_data.episode_starts
        )
        activity.add(self.policy.lstm_actor, mask)
        values = values.flatten()
        advantages = rollout_data.advantages
        if self.normalize_advantage:
            advantages = (advantages - advantages[mask].mean()) / (advantages[mask].std() + 1e-8)

        log_ratio = log_prob - rollout_data.old_log_prob
        ratio = th.exp(log_ratio)
        policy_loss_1 = advantages * ratio
        policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        policy_loss = -th.mean(th.min(policy_loss_1, policy_loss_2)[mask])

        values_pred = values
        if clip_range_vf is not None:
            values_pred = rollout_data.old_values + th.clamp(values - rollout_data.old_values, -clip_range_vf, clip_range_vf)
        value_loss = th.mean(((rollout_data.returns - values_pred) ** 2)[mask])
        # Without an analytical entropy, approximate it by the negative log-probability.
        entropy_loss = -th.mean((-log_prob if entropy is None else entropy)[mask])
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

        with th.no_grad():
            approx_kl = th.mean(((ratio - 1) - log_ratio)[mask]).item()
            clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()[mask]).item()
        stats["policy_gradient_loss"].append(policy_loss.item())
        stats["value_loss"].append(value_loss.item())
        stats["entropy_loss"].append(entropy_loss.item())
        stats["approx_kl_mean"].append(approx_kl)
        stats["clip_fraction"].append(clip_fraction)
        stats["loss_mean"].append(loss.item())
        return loss, approx_kl

    def _record(self, stats: dict[str, list[float]], learning_rate: float, prefix: str) -> None:
        for key, values in stats.items():
            self.logger.record(f"train/{prefix}{key}", float(np.mean(values)))
        self.logger.record(f"train/{prefix}learning_rate", learning_rate)

    def learn(
        self: SelfMetaRIMPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMetaRIMPPO:
        """RecurrentPPO's ``learn``; the TensorBoard run is named after the class unless ``tb_log_name`` is given."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or type(self).__name__,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.meta:
            state_dicts.append("slow_optimizer")
        return state_dicts, variables


@contextmanager
def trainable_only(module: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Freeze every parameter of ``module`` not in ``params``, so backward skips the frozen set."""
    keep = {id(param) for param in params}
    frozen = [param for param in module.parameters() if id(param) not in keep and param.requires_grad]
    for param in frozen:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in frozen:
            param.requires_grad_(True)


def check_meta_arguments(
    meta: bool,
    fast_span: int,
    slow_interval: int,
    slow_n_epochs: int,
    slow_learning_rate: float | Schedule,
    slow_parameters: Sequence[str] | None,
    slow_max_kl: float | None = None,
) -> None:
    """Raise a ``ValueError`` naming the first fast/slow argument that is not allowed."""
    if not isinstance(meta, bool):
        raise ValueError(f"meta={meta!r}: must be True or False")
    for name, value in (("fast_span", fast_span), ("slow_interval", slow_interval), ("slow_n_epochs", slow_n_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    if not callable(slow_learning_rate) and not (isinstance(slow_learning_rate, (int, float)) and slow_learning_rate > 0):
        raise ValueError(f"slow_learning_rate={slow_learning_rate!r}: must be a positive float or a schedule")
    real = isinstance(slow_max_kl, (int, float)) and not isinstance(slow_max_kl, bool) and math.isfinite(slow_max_kl)
    if slow_max_kl is not None and not (real and slow_max_kl > 0):
        raise ValueError(f"slow_max_kl={slow_max_kl!r}: must be a positive number or None")
    if slow_parameters is None:
        return
    if isinstance(slow_parameters, str) or not slow_parameters or not all(isinstance(p, str) for p in slow_parameters):
        raise ValueError(
            f"slow_parameters={slow_parameters!r}: must be a non-empty list of name patterns (regular expressions)"
        )
    for pattern in slow_parameters:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"slow_parameters: {pattern!r} is not a valid regular expression ({error})") from error
