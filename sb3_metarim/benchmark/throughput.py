"""
Training throughput of MetaRIMPPO against its baselines (needs the ``minigrid`` and ``bench`` extras): the models
``scripts/benchmark_throughput.py`` compares, and the timers it measures them with.

- :func:`make_classic_model`: ``metarim`` (MetaRIMPPO), ``modular`` (MetaRIMPPO, ``meta=False``), ``lstm``
  (RecurrentPPO with an LSTM as wide as the RIM, ``num_units * 32``) or ``ppo`` (feed-forward), the RIM the paper's
  core (:data:`PAPER_CORE`), on a MiniGrid env (``ImgObsWrapper``) or a classic control one.
- :func:`make_gotolocal_model`: ``metarim`` or ``lstm`` on BabyAI-GoToLocal-v0 with the mission and the zoo's
  settings (:data:`GOTOLOCAL_PPO`, :data:`GOTOLOCAL_META`); the RIM the package's default core or the paper's.
- :func:`make_cartpole_novel_model`: ``metarim`` or ``lstm`` with rl-zoo3's tuned RecurrentPPO entry for
  CartPoleNoVel-v1, the class swapped.
- :func:`make_memory_model`: ``MetaRIMPPO("MlpPolicy", env)`` with its defaults, or ``lstm``, with the memory suite's
  settings (:data:`MEMORY_PPO`) on a POPGym task.
- :func:`measure`: builds and warms up each model (one rollout), then times rounds alternating them, each a ``learn``
  of some rollouts split into collection and training (:class:`RolloutTimer`); :func:`summarize` gives the medians
  and the ratios to lstm.
- :func:`cores_matmul_time`: the RIM cores' time against their matrix products', under the profiler.
- :class:`StageTimer` and :func:`rollout_budget`: where a rollout's time goes (env steps, features extractor, recurrent
  cores, backward, optimizer steps); :func:`budget_verdict` says what the cores' share would have to become for
  metarim to reach twice lstm's steps/s.

.. code-block:: python

    builders = {algo: partial(make_gotolocal_model, algo, **GOTOLOCAL_SETTING) for algo in ("metarim", "lstm")}
    runs = pd.DataFrame(measure(builders, rollouts=2, repeats=5, setting="zoo"))
    print(summarize(runs, "setting"))
"""

import bisect
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pandas as pd
import torch as th
from minigrid.wrappers import ImgObsWrapper
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize
from torch import nn

from sb3_metarim.common.torch_layers import MiniGridFeaturesExtractor
from sb3_metarim.cores.rim import RIM
from sb3_metarim.envs.minigrid import GridIdsWrapper, MissionTokenWrapper
from sb3_metarim.meta_rim_ppo import policies
from sb3_metarim.meta_rim_ppo.meta_rim_ppo import MetaRIMPPO

try:
    import psutil
except ImportError:  # memory is then reported as NaN
    psutil = None

CLASSIC_ALGOS = ("metarim", "modular", "lstm", "ppo")
UNIT_SIZE = 32
# The paper's core: num_units modules of 32, no dense LSTM beside them (the package's default core is 16-wide modules
# beside a dense LSTM as wide as they are together). Its slow phases are never rejected (``slow_max_kl=None``).
PAPER_CORE = dict(unit_size=UNIT_SIZE, dense_size=0)
GOTOLOCAL = "BabyAI-GoToLocal-v0"
# The zoo's GoToLocal settings (zoo_configs/metarim_ppo.yml), shared by both algorithms.
GOTOLOCAL_PPO = dict(n_steps=128, n_epochs=4, learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, ent_coef=0.01)
GOTOLOCAL_META = dict(fast_span=20, slow_interval=2, slow_n_epochs=1, slow_learning_rate=1e-4)
# The zoo's setting: the arguments of make_gotolocal_model that the benchmark's sweeps vary.
GOTOLOCAL_SETTING = dict(n_envs=16, vec_env="dummy", fast_span=20, num_units=6, core="defaults", backward="span")
# How a RIM's gradient is computed (RIM.span_backward): one autograd node per span, or autograd through every step.
BACKWARDS = ("span", "steps")
CARTPOLE_NOVEL = "CartPoleNoVel-v1"
# rl-zoo3's tuned RecurrentPPO entry for CartPoleNoVel-v1 (its hyperparams/ppo_lstm.yml: normalized, 8 envs, learning
# rate and clip range decaying linearly from 1e-3 and 0.2), for both algorithms, the class swapped.
CARTPOLE_NOVEL_N_ENVS = 8
CARTPOLE_NOVEL_PPO = dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0)
CARTPOLE_NOVEL_POLICY = dict(
    ortho_init=False, activation_fn=nn.ReLU, lstm_hidden_size=64, enable_critic_lstm=True, net_arch=dict(pi=[64], vf=[64])
)
MINIBATCHES_PER_EPOCH = 8  # 16 envs x 128 steps / batch 256
# The memory suite's settings (sb3_metarim/benchmark/suites/memory.yml) and two of its tasks.
MEMORY_ENVS = ("popgym-RepeatFirstEasy-v0", "popgym-PositionOnlyCartPoleEasy-v0")
MEMORY_N_ENVS = 8
MEMORY_PPO = dict(n_steps=128, batch_size=256, n_epochs=4, learning_rate=1e-3, ent_coef=0.01)
# The stages of rollout_budget, in the order a reader adds them up.
BUDGET_STAGES = (
    "total",
    "collection",
    "env steps",
    "training",
    "backward",
    "optimizer steps",
    "features extractor forward",
    "features extractor backward",
    "recurrent cores forward",
    "recurrent cores backward (and heads)",
    "recurrent cores, forward and backward",
    "everything else",
)


def make_classic_model(
    algo: str,
    env_id: str,
    n_envs: int,
    n_steps: int,
    num_units: int,
    batch_size: int = 256,
    n_epochs: int = 4,
    learning_rate: float = 3e-4,
    seed: int = 0,
) -> BaseAlgorithm:
    """
    :param algo: One of :data:`CLASSIC_ALGOS`.
    :param env_id: A MiniGrid env (its image alone, ``ImgObsWrapper``) or any env with a Box observation.
    :param n_envs: Envs of the DummyVecEnv.
    :param n_steps: Rollout length per env (the sequence length).
    :param num_units: RIM modules (of 32, :data:`PAPER_CORE`; 4 active, 3 of 4); the LSTM gets ``num_units * 32``.
    :param batch_size: Minibatch size.
    :param n_epochs: Epochs per rollout.
    :param learning_rate: Learning rate.
    :param seed: Seed of the envs and the model.
    :return: the model on its own env, on the CPU, with the PPO settings shared by all algorithms.
    """
    wrapper = ImgObsWrapper if env_id.startswith("MiniGrid") else None
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed, wrapper_class=wrapper)
    common = dict(
        n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs, learning_rate=learning_rate, seed=seed, device="cpu"
    )
    if algo == "ppo":
        return PPO("MlpPolicy", env, **common)
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=num_units * UNIT_SIZE), **common)
    rim = dict(PAPER_CORE, num_units=num_units, top_k=min(4, num_units - 1))  # the default 4, sparse for N=4 too
    return MetaRIMPPO("MlpPolicy", env, meta=algo == "metarim", policy_kwargs=rim, slow_max_kl=None, **common)


def grid_wrappers(env: gym.Env) -> gym.Env:
    """:return: ``env`` with the zoo's wrappers for MiniGrid/BabyAI as single episodes: the mission as token ids, the
    grid as ids."""
    return GridIdsWrapper(MissionTokenWrapper(env))


def make_gotolocal_model(
    algo: str,
    n_envs: int,
    vec_env: str,
    fast_span: int,
    num_units: int,
    core: str,
    backward: str = "span",
    seed: int = 0,
    device: str = "cpu",
) -> BaseAlgorithm:
    """
    :param algo: ``"metarim"`` (MetaRIMPPO) or ``"lstm"`` (RecurrentPPO as wide as the RIM, ``num_units * 32``).
    :param n_envs: Envs; the batch grows with them, 8 minibatches per epoch.
    :param vec_env: ``"dummy"`` (DummyVecEnv) or ``"subproc"`` (SubprocVecEnv, one process per env).
    :param fast_span: metarim's ``fast_span``.
    :param num_units: RIM modules.
    :param core: metarim's core: ``"defaults"`` (the package's: modules of 16 beside a dense LSTM as wide as they are
        together, ``slow_max_kl`` 0.05) or ``"paper"`` (:data:`PAPER_CORE`, no ``slow_max_kl``).
    :param backward: metarim's RIMs' gradient (:data:`BACKWARDS`): ``"span"``, the package's, or ``"steps"``,
        autograd through every step (``RIM.span_backward = False``).
    :param seed: Seed of the envs and the model.
    :param device: Torch device of the model.
    :return: the model on BabyAI-GoToLocal-v0 with the mission (:func:`grid_wrappers`, ``MiniGridFeaturesExtractor``)
        and the zoo's settings.
    """
    vec_env_cls = SubprocVecEnv if vec_env == "subproc" else DummyVecEnv
    env = make_vec_env(GOTOLOCAL, n_envs=n_envs, seed=seed, wrapper_class=grid_wrappers, vec_env_cls=vec_env_cls)
    batch_size = n_envs * GOTOLOCAL_PPO["n_steps"] // MINIBATCHES_PER_EPOCH
    common = dict(GOTOLOCAL_PPO, batch_size=batch_size, seed=seed, device=device)
    policy_kwargs: dict[str, Any] = dict(features_extractor_class=MiniGridFeaturesExtractor)
    if algo == "lstm":
        lstm = dict(policy_kwargs, lstm_hidden_size=num_units * UNIT_SIZE)
        return RecurrentPPO("MultiInputLstmPolicy", env, policy_kwargs=lstm, **common)
    rim = dict(policy_kwargs, num_units=num_units, top_k=min(4, num_units - 1))
    meta: dict[str, Any] = GOTOLOCAL_META | dict(fast_span=fast_span)
    if core == "paper":
        rim |= PAPER_CORE
        meta |= dict(slow_max_kl=None)
    else:  # the default split of the width: half to the modules (6 of 16 at 192), half to the dense LSTM
        rim |= dict(lstm_hidden_size=num_units * UNIT_SIZE)
    model = MetaRIMPPO("MultiInputPolicy", env, policy_kwargs=rim, **meta, **common)
    for module in model.policy.modules():
        if isinstance(module, RIM):
            module.span_backward = backward == "span"
    return model


def make_cartpole_novel_model(algo: str, seed: int = 0) -> BaseAlgorithm:
    """
    :param algo: ``"metarim"`` (MetaRIMPPO) or ``"lstm"`` (RecurrentPPO).
    :param seed: Seed of the envs and the model.
    :return: the model with rl-zoo3's tuned RecurrentPPO settings for CartPoleNoVel-v1 (:data:`CARTPOLE_NOVEL_PPO`,
        :data:`CARTPOLE_NOVEL_POLICY`), on the CPU: what a RecurrentPPO user gets by swapping the class.
    """
    import rl_zoo3.import_envs  # noqa: F401  (registers CartPoleNoVel-v1)
    from rl_zoo3.utils import linear_schedule

    env = VecNormalize(make_vec_env(CARTPOLE_NOVEL, n_envs=CARTPOLE_NOVEL_N_ENVS, seed=seed))
    common = dict(
        CARTPOLE_NOVEL_PPO,
        learning_rate=linear_schedule(1e-3),
        clip_range=linear_schedule(0.2),
        policy_kwargs=CARTPOLE_NOVEL_POLICY,
        seed=seed,
        device="cpu",
    )
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", env, **common)
    return MetaRIMPPO("MlpPolicy", env, **common)


def make_memory_model(algo: str, env_id: str, seed: int = 0) -> BaseAlgorithm:
    """
    :param algo: ``"defaults"`` (``MetaRIMPPO("MlpPolicy", env)``, the package's defaults) or ``"lstm"``
        (RecurrentPPO with an LSTM of 192).
    :param env_id: A POPGym task (:data:`MEMORY_ENVS`).
    :param seed: Seed of the envs and the model.
    :return: the model with the memory suite's settings, on the CPU.
    """
    import popgym  # noqa: F401  (registers the POPGym environments)

    env = make_vec_env(env_id, n_envs=MEMORY_N_ENVS, seed=seed)
    common = dict(MEMORY_PPO, seed=seed, device="cpu")
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=6 * UNIT_SIZE), **common)
    return MetaRIMPPO("MlpPolicy", env, **common)


class RolloutTimer(BaseCallback):
    """Collection = rollout start to rollout end; training = rollout end to the next rollout start (or learn's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.collect_s = self.train_s = self.started = 0.0
        self.ended: float | None = None

    def _on_rollout_start(self) -> None:
        self.started = time.perf_counter()
        if self.ended is not None:
            self.train_s += self.started - self.ended

    def _on_rollout_end(self) -> None:
        self.ended = time.perf_counter()
        self.collect_s += self.ended - self.started

    def _on_training_end(self) -> None:
        self.train_s += time.perf_counter() - self.ended

    def _on_step(self) -> bool:
        return True


def timed_learn(model: BaseAlgorithm, rollouts: int) -> dict[str, float]:
    """
    :param model: The model, trained on (``reset_num_timesteps=False``).
    :param rollouts: Rollouts to train for.
    :return: the throughput numbers of this ``learn``: steps, seconds (total, collection, training), steps/s (total
        and collection) and training seconds per rollout.
    """
    steps = rollouts * model.n_envs * model.n_steps
    timer = RolloutTimer()
    start = time.perf_counter()
    model.learn(steps, callback=timer, reset_num_timesteps=False)
    total_s = time.perf_counter() - start
    return dict(
        steps=steps,
        total_s=total_s,
        collect_s=timer.collect_s,
        train_s=timer.train_s,
        steps_per_s=steps / total_s,
        collect_steps_per_s=steps / timer.collect_s,
        train_s_per_rollout=timer.train_s / rollouts,
    )


def rss_mb() -> float:
    """:return: the process's resident memory in MB (NaN without psutil)."""
    return psutil.Process().memory_info().rss / 2**20 if psutil else float("nan")


def measure(builders: dict[str, Callable[[], BaseAlgorithm]], rollouts: int, repeats: int, **labels: object) -> list[dict]:
    """
    :param builders: Algorithm name -> a function building its model.
    :param rollouts: Rollouts per timed ``learn``.
    :param repeats: Rounds; each round times every model once, in the order of ``builders``.
    :param labels: Columns added to every row (the env, the setting).
    :return: one row per timed ``learn``: the labels, ``algo``, ``round``, ``memory_mb`` (the RSS growth while building
        the model and running its warm-up of one rollout) and :func:`timed_learn`'s numbers.
    """
    models, memory = {}, {}
    for algo, build in builders.items():
        before = rss_mb()
        models[algo] = build()
        models[algo].learn(models[algo].n_envs * models[algo].n_steps)
        memory[algo] = rss_mb() - before
    rows = []
    for round_ in range(repeats):
        for algo, model in models.items():
            rows.append(dict(labels, algo=algo, round=round_, memory_mb=memory[algo], **timed_learn(model, rollouts)))
            print(f"{labels} {algo:8s} round {round_}: {rows[-1]['steps_per_s']:8.0f} steps/s", flush=True)
    for model in models.values():
        model.env.close()  # SubprocVecEnv's worker processes
    return rows


def summarize(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """
    :param runs: :func:`measure`'s rows, with an ``lstm`` algo in every round.
    :param key: The column that groups the runs (the env, the setting).
    :return: per (key, algo), the median, min and max of steps/s, the medians of collection steps/s, training seconds
        per rollout and memory, and the median, min and max over rounds of each run's ratio to lstm's run.
    """
    summary = runs.groupby([key, "algo"], sort=False).agg(
        steps_per_s=("steps_per_s", "median"),
        min=("steps_per_s", "min"),
        max=("steps_per_s", "max"),
        collect_steps_per_s=("collect_steps_per_s", "median"),
        train_s_per_rollout=("train_s_per_rollout", "median"),
        memory_mb=("memory_mb", "median"),
    )
    per_round = runs.pivot_table(index=[key, "round"], columns="algo", values="steps_per_s")
    ratios = per_round.div(per_round["lstm"], axis=0).groupby(level=key)
    for column, statistic in (("ratio_to_lstm", "median"), ("ratio_min", "min"), ("ratio_max", "max")):
        summary[column] = ratios.agg(statistic).stack().reindex(summary.index)
    return summary.reset_index()


class StageTimer:
    """
    Wall time of the stages of a model's ``learn`` (seconds, summed over calls): the env's ``step_wait``, the features
    extractor's forward and backward (the backward timed from the moment the gradient reaches the features: autograd
    runs it after everything that reads them), the recurrent cores' forward, every ``backward()``, the optimizers'
    steps, collection and training. Installs its timers on entering and removes them on leaving.

    :param model: MetaRIMPPO (its RIM cores) or RecurrentPPO (its LSTMs).
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        self.model = model
        self.seconds: dict[str, float] = {}
        self.reached_features: float | None = None
        self.undo: list[Callable[[], None]] = []

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage``."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def wrap(
        self, owner: object, name: str, stage: str, on_result: Callable[[object], object] = lambda result: result
    ) -> None:
        """Time ``owner.name`` as ``stage``; its result goes through ``on_result`` (untimed)."""
        inner = getattr(owner, name)
        had_own = name in vars(owner)

        def timed(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            result = inner(*args, **kwargs)
            self.add(stage, time.perf_counter() - start)
            return on_result(result)

        setattr(owner, name, timed)
        self.undo.append(lambda: setattr(owner, name, inner) if had_own else delattr(owner, name))

    def __enter__(self) -> "StageTimer":
        model, policy = self.model, self.model.policy
        timer = self

        class MarkFeatures(th.autograd.Function):
            """The identity; its backward notes when the gradient reaches the features."""

            @staticmethod
            def forward(ctx: object, features: th.Tensor) -> th.Tensor:
                return features.view_as(features)

            @staticmethod
            def backward(ctx: object, grad: th.Tensor) -> th.Tensor:
                timer.reached_features = time.perf_counter()
                return grad

        mark = lambda features: MarkFeatures.apply(features) if th.is_grad_enabled() else features  # noqa: E731
        self.wrap(policy.features_extractor, "forward", "features extractor forward", on_result=mark)
        if isinstance(model, MetaRIMPPO):  # the fused actor and critic cores, and the actor alone (log-prob refresh)
            self.wrap(policies, "run_rims", "recurrent cores forward")
            self.wrap(RIM, "forward", "recurrent cores forward")
        else:
            for core in (policy.lstm_actor, policy.lstm_critic):
                self.wrap(core, "forward", "recurrent cores forward")
        self.wrap(model.env, "step_wait", "env steps")
        self.wrap(model, "collect_rollouts", "collection")
        self.wrap(model, "train", "training")
        slow_optimizer = getattr(model, "slow_optimizer", None)  # MetaRIMPPO's second optimizer
        for optimizer in (policy.optimizer, *([slow_optimizer] if slow_optimizer is not None else [])):
            self.wrap(optimizer, "step", "optimizer steps")
        backward = th.Tensor.backward

        def timed_backward(tensor: th.Tensor, *args: object, **kwargs: object) -> None:
            self.reached_features = None
            start = time.perf_counter()
            backward(tensor, *args, **kwargs)
            end = time.perf_counter()
            self.add("backward", end - start)
            if self.reached_features is not None:
                self.add("features extractor backward", end - self.reached_features)

        th.Tensor.backward = timed_backward
        self.undo.append(lambda: setattr(th.Tensor, "backward", backward))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self.undo):
            undo()


def rollout_budget(model: BaseAlgorithm, rollouts: int) -> dict[str, float]:
    """
    :param model: The model, warmed up by two rollouts here (one slow phase of metarim's).
    :param rollouts: Rollouts timed after the warm-up.
    :return: seconds per rollout of each of :data:`BUDGET_STAGES`: :class:`StageTimer`'s stages, the total, the
        cores' backward (every backward pass less the features extractor's: the cores and the small heads), the
        cores' forward and backward, and everything else.
    """
    model.learn(2 * model.n_envs * model.n_steps)
    with StageTimer(model) as timer:
        start = time.perf_counter()
        model.learn(rollouts * model.n_envs * model.n_steps, reset_num_timesteps=False)
        timer.add("total", time.perf_counter() - start)
    seconds = {stage: value / rollouts for stage, value in timer.seconds.items()}
    seconds.setdefault("features extractor backward", 0.0)  # an extractor without parameters has none
    seconds["recurrent cores backward (and heads)"] = seconds["backward"] - seconds["features extractor backward"]
    seconds["recurrent cores, forward and backward"] = (
        seconds["recurrent cores forward"] + seconds["recurrent cores backward (and heads)"]
    )
    seconds["everything else"] = seconds["total"] - seconds["recurrent cores, forward and backward"]
    return seconds


def budget_verdict(meta: dict[str, float], lstm: dict[str, float]) -> str:
    """
    :param meta: metarim's :func:`rollout_budget`.
    :param lstm: lstm's :func:`rollout_budget`.
    :return: a sentence: how fast metarim's cores would have to become for metarim to reach twice lstm's steps/s.
    """
    allowed = lstm["total"] / 2 - meta["everything else"]
    cores = meta["recurrent cores, forward and backward"]
    return (
        f"For metarim to reach twice lstm's steps/s, a rollout would have to take {lstm['total'] / 2:.2f} s; "
        f"everything but its cores takes {meta['everything else']:.2f} s, so its cores (forward and backward) would "
        + (
            f"have to take {allowed:.2f} s instead of {cores:.2f} s: {cores / allowed:.1f}x faster."
            if allowed > 0
            else "have to take no time at all, and that would not be enough."
        )
    )


# The matrix products of the cores' kernels: the batched products of the RIM's modules and attention, and the dense
# LSTM's fused forward and backward (oneDNN), whose time is its matrix products.
MATMUL_KERNELS = frozenset(
    ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm", "aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward")
)


def cores_matmul_time(model: MetaRIMPPO, rollouts: int) -> dict[str, float]:
    """
    The RIM cores' time against their matrix products' (their floor: a core cannot run faster than its products),
    under ``torch.profiler`` (which adds a microsecond or two to every kernel, so it overstates the small kernels' share).

    :param model: MetaRIMPPO with its RIMs' gradient by span, warmed up.
    :param rollouts: Rollouts to profile.
    :return: seconds per rollout: ``cores`` (the cores' forward, collection and training, and their span's backward)
        and ``matmul`` (the matrix products inside them), and ``ratio`` = cores / matmul.
    """
    inner = policies.run_rims

    def marked(*args: Any, **kwargs: Any) -> Any:
        with th.profiler.record_function("recurrent cores"):
            return inner(*args, **kwargs)

    policies.run_rims = marked
    try:
        with th.profiler.profile() as profiler:
            model.learn(rollouts * model.n_envs * model.n_steps, reset_num_timesteps=False)
    finally:
        policies.run_rims = inner
    events = profiler.events()
    spans = sorted((e.time_range.start, e.time_range.end) for e in events if e.name in ("recurrent cores", "RIMSpanBackward"))
    starts = [start for start, _ in spans]

    def in_cores(event: Any) -> bool:
        index = bisect.bisect_right(starts, event.time_range.start) - 1
        return index >= 0 and event.time_range.end <= spans[index][1]

    cores_us = sum(end - start for start, end in spans)
    matmul_us = sum(e.self_cpu_time_total for e in events if e.name in MATMUL_KERNELS and in_cores(e))
    return dict(cores=cores_us / 1e6 / rollouts, matmul=matmul_us / 1e6 / rollouts, ratio=cores_us / matmul_us)
