"""Fast and slow training: which parameters each phase touches, when, and at which learning rate."""

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_metarim import MetaRIMPPO
from sb3_metarim.cores.rim import RIM_SLOW_PARAMETERS

from .conftest import SMALL_CORE


def make_model(env, **kwargs) -> MetaRIMPPO:
    args = dict(n_steps=16, batch_size=16, n_epochs=2, seed=0, policy_kwargs=dict(SMALL_CORE)) | kwargs
    return MetaRIMPPO("MlpPolicy", env, **args)


def snapshot(model: MetaRIMPPO) -> dict[str, th.Tensor]:
    return {name: param.detach().clone() for name, param in model.policy.named_parameters()}


def is_slow(name: str) -> bool:
    return any(pattern in name for pattern in RIM_SLOW_PARAMETERS)


class PhaseSpy:
    """Wraps ``_train_phase`` and records, per call, which set it trained and which parameters changed."""

    def __init__(self, model: MetaRIMPPO) -> None:
        self.model = model
        self.calls: list[dict] = []
        self.original = model._train_phase
        model._train_phase = self

    def __call__(self, optimizer, learning_rate, n_epochs, span, *args):
        before = snapshot(self.model)
        result = self.original(optimizer, learning_rate, n_epochs, span, *args)
        after = snapshot(self.model)
        changed = {name for name in before if not th.equal(before[name], after[name])}
        phase = "slow" if optimizer is self.model.slow_optimizer else "fast"
        self.calls.append(
            dict(phase=phase, changed=changed, lr=learning_rate, span=span, rollout=self.model._n_rollouts_trained)
        )
        return result


def test_each_phase_leaves_the_other_set_bit_identical(cue_env):
    model = make_model(cue_env, slow_interval=1)
    spy = PhaseSpy(model)
    model.learn(64)
    names = set(snapshot(model))
    slow_names = {name for name in names if is_slow(name)}
    assert slow_names and slow_names != names
    phases = [call["phase"] for call in spy.calls]
    assert phases == ["fast", "slow"] * 2
    for call in spy.calls:
        own = slow_names if call["phase"] == "slow" else names - slow_names
        assert call["changed"], call["phase"]
        assert call["changed"] <= own, f"{call['phase']} phase changed {call['changed'] - own}"


def test_slow_interval_is_respected(cue_env):
    model = make_model(cue_env, slow_interval=3, n_epochs=1)
    spy = PhaseSpy(model)
    model.learn(16 * 2 * 7)
    slow_rollouts = [call["rollout"] for call in spy.calls if call["phase"] == "slow"]
    assert slow_rollouts == [3, 6]
    assert sum(call["phase"] == "fast" for call in spy.calls) == 7


def test_spans_fast_short_slow_full(cue_env):
    model = make_model(cue_env, slow_interval=1, fast_span=4)
    spy = PhaseSpy(model)
    model.learn(32)
    assert [(call["phase"], call["span"]) for call in spy.calls] == [("fast", 4), ("slow", 16)]


def test_fast_span_bounds_the_sequences(cue_env):
    model = make_model(cue_env, fast_span=5)
    model.learn(32)
    lengths = [batch.mask.shape[0] // batch.lstm_states.pi[0].shape[1] for batch in model.rollout_buffer.get(16, span=5)]
    assert max(lengths) <= 5
    full = [batch.mask.shape[0] // batch.lstm_states.pi[0].shape[1] for batch in model.rollout_buffer.get(16, span=16)]
    # Episodes of CueMemory last 6 steps, so full-rollout sequences are cut only there.
    assert max(full) == 6


def test_learning_rates_and_schedules_are_the_configured_ones(cue_env):
    fast_schedule = lambda progress: 1e-3 * progress  # noqa: E731
    slow_schedule = lambda progress: 2e-4 * progress + 1e-5  # noqa: E731
    model = make_model(cue_env, learning_rate=fast_schedule, slow_learning_rate=slow_schedule, slow_interval=1)
    spy = PhaseSpy(model)
    model.learn(96)
    progress = [1.0 - 32 * i / 96 for i in (1, 2, 3)]
    assert [call["lr"] for call in spy.calls if call["phase"] == "fast"] == pytest.approx([fast_schedule(p) for p in progress])
    assert [call["lr"] for call in spy.calls if call["phase"] == "slow"] == pytest.approx([slow_schedule(p) for p in progress])
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(fast_schedule(progress[-1]))
    assert model.slow_optimizer.param_groups[0]["lr"] == pytest.approx(slow_schedule(progress[-1]))
    logged = model.logger.name_to_value
    assert logged["train/learning_rate"] == pytest.approx(fast_schedule(progress[-1]))
    assert logged["train/slow_learning_rate"] == pytest.approx(slow_schedule(progress[-1]))
    for key in (
        "slow_policy_gradient_loss",
        "slow_value_loss",
        "slow_approx_kl",
        "slow_clip_fraction",
        "approx_kl",
        "clip_fraction",
    ):
        assert f"train/{key}" in logged
    rates = [logged[f"rim/active_rate_unit{unit}"] for unit in range(4)]
    assert sum(rates) == pytest.approx(2.0)


def test_optimizers_hold_disjoint_sets(cue_env):
    model = make_model(cue_env)
    fast = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    slow = {id(p) for group in model.slow_optimizer.param_groups for p in group["params"]}
    assert not fast & slow
    assert fast | slow == {id(p) for p in model.policy.parameters()}


def test_no_stale_gradients_after_training(cue_env):
    model = make_model(cue_env, slow_interval=1)
    model.learn(32)
    # The slow phase ran last: fast parameters were frozen and hold no gradient.
    for name, param in model.policy.named_parameters():
        if not is_slow(name):
            assert param.grad is None, name
        assert param.requires_grad, name


def test_meta_false_trains_all_parameters_together(cue_env):
    model = make_model(cue_env, meta=False)
    spy = PhaseSpy(model)
    model.learn(32)
    assert model.slow_optimizer is None
    assert len(spy.calls) == 1 and spy.calls[0]["span"] is None
    assert spy.calls[0]["changed"] == set(snapshot(model))


def test_meta_lstm_ablation_splits_by_pattern(cue_env):
    model = make_model(
        cue_env,
        policy_kwargs=dict(recurrent_core="lstm", num_units=2, unit_size=8),
        slow_parameters=("value_net", "lstm_critic"),
    )
    slow = {
        name
        for name, p in model.policy.named_parameters()
        if any(p is q for q in model.slow_optimizer.param_groups[0]["params"])
    }
    assert slow and all("value_net" in name or "lstm_critic" in name for name in slow)
    model.learn(32)


def test_slow_phase_clips_and_measures_kl_around_the_policy_the_fast_phase_left(cue_env):
    # A fast phase at a high learning rate moves the policy far past this target_kl. Measured from the
    # collecting policy, the slow phase would stop at its first minibatch without a step.
    model = make_model(cue_env, slow_interval=1, learning_rate=0.05, target_kl=1e-4, slow_learning_rate=1e-3)
    spy = PhaseSpy(model)
    model.learn(32)
    slow = [call for call in spy.calls if call["phase"] == "slow"]
    assert slow and slow[0]["changed"], "the slow phase took no step"


class LossSpy:
    """Records every minibatch's loss and approximate KL returned by ``_ppo_loss``."""

    def __init__(self, model: MetaRIMPPO) -> None:
        self.original = model._ppo_loss
        self.values: list[tuple[float, float]] = []
        model._ppo_loss = self

    def __call__(self, *args):
        loss, approx_kl = self.original(*args)
        self.values.append((loss.item(), approx_kl))
        return loss, approx_kl


@pytest.mark.parametrize("meta", [False, True])
def test_logs_loss_and_kl_as_recurrent_ppo_does(cue_env, meta):
    # 2 envs x 16 steps, batch 16: two minibatches per epoch in either phase; 3 fast epochs, 2 slow epochs.
    model = make_model(cue_env, meta=meta, n_epochs=3, slow_interval=1, slow_n_epochs=2, fast_span=8)
    spy = LossSpy(model)
    model.learn(32)
    logged = model.logger.name_to_value
    fast, slow = spy.values[:6], spy.values[6:]
    assert len(slow) == (4 if meta else 0)
    for prefix, values in (("", fast), ("slow_", slow)):
        if not values:
            continue
        losses, kls = zip(*values, strict=True)
        assert logged[f"train/{prefix}loss"] == pytest.approx(losses[-1])  # the last minibatch
        assert logged[f"train/{prefix}approx_kl"] == pytest.approx(sum(kls[-2:]) / 2)  # the last epoch
        assert logged[f"train/{prefix}loss_mean"] == pytest.approx(sum(losses) / len(losses))
        assert logged[f"train/{prefix}approx_kl_mean"] == pytest.approx(sum(kls) / len(kls))


@pytest.mark.parametrize("learning_rate, changed", [(1e-12, False), (0.05, True)])
def test_logs_how_often_the_update_changes_the_active_set(cue_env, learning_rate, changed):
    # The paper's selection: an update here changes the scores by less than the default hold, which keeps the set;
    # and no slow_max_kl: the slow phase at 0.05 moves the policy past the default limit, which would undo it.
    model = make_model(
        cue_env,
        learning_rate=learning_rate,
        slow_learning_rate=learning_rate,
        n_epochs=4,
        slow_interval=1,
        slow_max_kl=None,
        policy_kwargs=dict(SMALL_CORE, sticky_bonus=0.0),
    )
    model.learn(32)
    value = model.logger.name_to_value["rim/active_set_changed"]
    assert 0.0 <= value <= 1.0
    assert (value > 0.0) == changed


def test_no_active_set_diagnostic_without_a_rim(cue_env):
    model = make_model(cue_env, meta=False, policy_kwargs=dict(recurrent_core="lstm", num_units=2, unit_size=8))
    model.learn(32)
    assert "rim/active_set_changed" not in model.logger.name_to_value


def slow_set(model: MetaRIMPPO) -> list[th.Tensor]:
    return [param.detach().clone() for group in model.slow_optimizer.param_groups for param in group["params"]]


def test_slow_max_kl_rejects_a_slow_phase_that_moves_the_policy_too_far(cue_env):
    # A slow learning rate this high moves the policy by far more than the limit: every slow phase is undone.
    model = make_model(cue_env, slow_interval=1, slow_learning_rate=0.05, slow_max_kl=1e-9)
    initial = slow_set(model)
    spy = PhaseSpy(model)
    model.learn(64)
    slow_calls = [call for call in spy.calls if call["phase"] == "slow"]
    assert len(slow_calls) == 2 and all(call["changed"] for call in slow_calls), "the slow phases took steps"
    assert all(th.equal(before, after) for before, after in zip(initial, slow_set(model), strict=True))
    assert model.slow_optimizer.state_dict()["state"] == {}, "the slow optimizer's moments were restored too"
    logged = model.logger.name_to_value
    assert logged["train/slow_rejected"] == 1.0 and logged["train/slow_rollout_kl"] > 1e-9


def test_slow_max_kl_keeps_a_slow_phase_within_it_and_changes_nothing_else():
    # The measurement is one pass without gradients and draws no random numbers: a limit that is not reached
    # trains exactly as no limit does.
    models = [
        make_model(make_vec_env("sb3_metarim/CueMemory-v0", n_envs=2, seed=0), slow_interval=1, slow_max_kl=limit).learn(64)
        for limit in (None, 1e9)
    ]
    unlimited, limited = (snapshot(model) for model in models)
    assert all(th.equal(unlimited[name], limited[name]) for name in unlimited)
    logged = models[1].logger.name_to_value
    assert logged["train/slow_rejected"] == 0.0 and 0.0 <= logged["train/slow_rollout_kl"] < 1e9
    assert "train/slow_rejected" not in models[0].logger.name_to_value
