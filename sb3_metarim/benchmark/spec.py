"""
A benchmark suite: environments x variants x seeds, read from a yaml file.

.. code-block:: yaml

    suite: memory                 # results go to <out>/memory/<env>/<variant>/seed<k>/
    seeds: [0, 1, 2]
    imports: [popgym]             # modules that register the suite's environments
    hyperparams:                  # shared by every run (rl-zoo3 style; n_envs is the harness's)
      n_envs: 8
      n_steps: 128
    envs:
      popgym-RepeatFirstEasy-v0:
        n_timesteps: 50000
        eval_freq: 5000           # evaluate (and checkpoint) every this many steps
        score_range: [-0.5, 1.0]  # return of a random and of an optimal policy (for normalized scores)
        threshold: 0.9            # return that counts as solved (frames to threshold)
        hyperparams: {normalize: true}
    variants:
      metarim_ppo: {algo: metarim_ppo, policy: MlpPolicy}
      ppo_lstm: {algo: ppo_lstm, policy: MlpLstmPolicy, hyperparams: {policy_kwargs: {lstm_hidden_size: 192}}}

Two keys chain runs and test them off their training env:

- ``transfer_envs`` (env entry): zero-shot transfer. ``{level: {env_id: ..., env_kwargs: {...}}}``, e.g. ``easy``,
  ``medium``, ``difficult`` versions of the trained env; at each evaluation (and so at the end) the model is also
  evaluated, without training, ``transfer_episodes`` deterministic episodes (default ``n_eval_episodes``) on each
  level, on ``n_eval_envs`` envs seeded apart, into the run's ``transfer.csv``. A run is finished when that is
  written at its last step too; a run finished before the key was added gets it from its ``model.zip`` on the
  next ``run``.
- ``init_from`` (variant): fine-tuning (a curriculum). The folder, relative to the results root, of a run whose
  ``model.zip`` this variant starts from, ``{seed}`` standing for the run's seed, e.g.
  ``paper/BabyAI-GoToLocal-v0/metarim_ppo/seed{seed}``. The model is loaded with its weights and both optimizers'
  states (its architecture, ``policy_kwargs``, is the pretrained run's) and trained with this run's other
  hyperparameters for ``n_timesteps`` more steps, counted from 0. Until that run is finished this one waits:
  ``run`` skips it, saying so, and ``list`` shows it as waiting.

Hyperparameters merge in the order suite, env, variant (``policy_kwargs`` key by key). The harness consumes
``n_envs``, ``normalize`` (``VecNormalize``), ``frame_stack`` (``VecFrameStack``) and ``env_wrapper`` (gymnasium
wrappers around each env, outside its ``Monitor``, as rl-zoo3's key: a class path or a list of class paths or
``{class path: kwargs}``, innermost first, e.g. ``[{sb3_metarim.common.wrappers.PrevActionRewardWrapper: {first_step:
false}}]`` for meta-RL tasks); every other key goes to the algorithm's constructor.
"""

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HARNESS_KEYS = ("n_envs", "normalize", "frame_stack", "env_wrapper")
SUITE_KEYS = ("suite", "seeds", "imports", "hyperparams", "envs", "variants")
ENV_KEYS = (
    *("n_timesteps", "eval_freq", "n_eval_episodes", "n_eval_envs"),
    *("env_kwargs", "score_range", "threshold", "hyperparams", "transfer_envs", "transfer_episodes"),
)
VARIANT_KEYS = ("algo", "policy", "hyperparams", "init_from")
TRANSFER_LEVEL_KEYS = ("env_id", "env_kwargs")


@dataclass(frozen=True)
class EnvSpec:
    """
    One environment of a suite.

    :param env_id: Gymnasium id.
    :param n_timesteps: Training budget in environment steps.
    :param eval_freq: Steps between evaluations (and checkpoints).
    :param score_range: Returns of a random and of an optimal policy; scores are normalized to 0 and 1 with them.
    :param threshold: Return that counts as solved, for frames to threshold.
    :param n_eval_episodes: Deterministic evaluation episodes per evaluation.
    :param n_eval_envs: Parallel evaluation envs (seeded apart from the training envs).
    :param env_kwargs: Keyword arguments of ``gymnasium.make``.
    :param hyperparams: Hyperparameters of this env's runs (over the suite's).
    :param transfer_envs: Zero-shot transfer levels: name -> ``{"env_id": ..., "env_kwargs": {...}}``.
    :param transfer_episodes: Deterministic episodes per transfer level and evaluation.
    """

    env_id: str
    n_timesteps: int
    eval_freq: int
    score_range: tuple[float, float]
    threshold: float
    n_eval_episodes: int = 20
    n_eval_envs: int = 4
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    transfer_envs: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfer_episodes: int = 20

    @property
    def folder_name(self) -> str:
        """The env id as one path component (``sb3_metarim/TMaze-v0`` -> ``sb3_metarim-TMaze-v0``)."""
        return self.env_id.replace("/", "-")

    def normalize_score(self, returns: Any) -> Any:
        """:return: ``returns`` mapped so that a random policy scores 0 and an optimal one 1."""
        low, high = self.score_range
        return (returns - low) / (high - low)


@dataclass(frozen=True)
class VariantSpec:
    """
    One algorithm configuration of a suite.

    :param name: Name of the variant (a folder name).
    :param algo: Key of :data:`sb3_metarim.benchmark.runner.ALGORITHMS`.
    :param policy: Policy name or class path.
    :param hyperparams: Hyperparameters of this variant (over the suite's and the env's).
    :param init_from: Folder (relative to the results root, ``{seed}`` for the seed) of the finished run whose
        ``model.zip`` this variant fine-tunes; ``None``: trained from scratch.
    """

    name: str
    algo: str
    policy: str = "MlpPolicy"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run: an env, a variant and a seed of a suite."""

    suite: str
    env: EnvSpec
    variant: VariantSpec
    seed: int
    base_hyperparams: dict[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.env.env_id, self.variant.name, self.seed)

    def folder(self, root: Path) -> Path:
        """:return: ``root/<suite>/<env>/<variant>/seed<k>``."""
        return Path(root) / self.suite / self.env.folder_name / self.variant.name / f"seed{self.seed}"

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The merged hyperparameters: suite, then env, then variant; ``policy_kwargs`` merged key by key."""
        return merge_hyperparams(self.base_hyperparams, self.env.hyperparams, self.variant.hyperparams)

    def init_folder(self, root: Path) -> Path | None:
        """:return: the folder of the run this one fine-tunes (``variant.init_from``), or ``None``."""
        if self.variant.init_from is None:
            return None
        return Path(root) / self.variant.init_from.format(seed=self.seed)

    def describe(self) -> str:
        return f"{self.env.env_id} / {self.variant.name} / seed {self.seed}"


@dataclass(frozen=True)
class SuiteSpec:
    """A grid of envs x variants x seeds; see the module's docstring for the yaml format."""

    name: str
    seeds: tuple[int, ...]
    envs: tuple[EnvSpec, ...]
    variants: tuple[VariantSpec, ...]
    hyperparams: dict[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ()

    def runs(
        self,
        envs: Iterable[str] | None = None,
        variants: Iterable[str] | None = None,
        seeds: Iterable[int] | None = None,
    ) -> list[RunSpec]:
        """
        The grid in a fixed order (env, then seed, then variant, so early runs cover every variant), optionally
        restricted.

        :param envs: Env ids to keep (``None``: all).
        :param variants: Variant names to keep (``None``: all).
        :param seeds: Seeds to keep (``None``: the suite's).
        :return: the runs.
        """
        env_filter = _checked_subset("env", envs, [env.env_id for env in self.envs])
        variant_filter = _checked_subset("variant", variants, [variant.name for variant in self.variants])
        seed_list = self.seeds if seeds is None else tuple(seeds)
        return [
            RunSpec(self.name, env, variant, seed, self.hyperparams, self.imports)
            for env in self.envs
            if env.env_id in env_filter
            for seed in seed_list
            for variant in self.variants
            if variant.name in variant_filter
        ]

    def import_modules(self) -> None:
        """Import the modules that register the suite's environments."""
        import_modules(self.imports)

    def env(self, env_id: str) -> EnvSpec:
        return next(env for env in self.envs if env.env_id == env_id)


def import_modules(modules: Iterable[str]) -> None:
    """Import ``modules`` (they register environments); a missing one is a ``ValueError`` naming it."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"imports: {module!r} cannot be imported ({error}); install it or remove it") from error


def shard(runs: list[RunSpec], index: int, count: int) -> list[RunSpec]:
    """
    :param runs: The grid.
    :param index: This shard, ``0 <= index < count``.
    :param count: Number of shards.
    :return: every ``count``-th run starting at ``index``: the shards partition the grid.
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard={index}/{count}: must be i/n with n >= 1 and 0 <= i < n")
    return runs[index::count]


def parse_shard(text: str) -> tuple[int, int]:
    """:return: ``(index, count)`` from ``"i/n"``."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as error:
        raise ValueError(f"--shard {text!r}: must be i/n, e.g. 0/4") from error
    shard([], index, count)  # validates
    return index, count


def merge_hyperparams(*layers: dict[str, Any]) -> dict[str, Any]:
    """:return: the layers merged left to right, ``policy_kwargs`` key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        policy_kwargs = {**merged.get("policy_kwargs", {}), **layer.get("policy_kwargs", {})}
        merged.update(layer)
        if policy_kwargs:
            merged["policy_kwargs"] = policy_kwargs
    return merged


def load_suite(source: str | Path) -> SuiteSpec:
    """
    :param source: A yaml file, or the name of a suite shipped in ``sb3_metarim/benchmark/suites/``.
    :return: the suite, validated.
    """
    path = Path(source)
    if not path.is_file():
        shipped = Path(__file__).parent / "suites" / f"{source}.yml"
        if not shipped.is_file():
            names = sorted(p.stem for p in shipped.parent.glob("*.yml"))
            raise ValueError(f"suite={str(source)!r}: no such file, and not a shipped suite ({names})")
        path = shipped
    with open(path) as file:
        data = yaml.safe_load(file)
    return suite_from_dict(data, where=str(path))


def suite_from_dict(data: dict[str, Any], where: str = "suite") -> SuiteSpec:
    """:return: the suite described by ``data`` (the yaml's content); errors name ``where`` and the key."""
    _check_keys(where, data, SUITE_KEYS, required=("suite", "seeds", "envs", "variants"))
    seeds = data["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(seed, int) for seed in seeds):
        raise ValueError(f"{where}: seeds={seeds!r}: must be a non-empty list of integers")
    envs = tuple(_env_spec(env_id, entry or {}, f"{where}: envs.{env_id}") for env_id, entry in data["envs"].items())
    variants = tuple(_variant_spec(name, entry or {}, f"{where}: variants.{name}") for name, entry in data["variants"].items())
    return SuiteSpec(
        name=str(data["suite"]),
        seeds=tuple(seeds),
        envs=envs,
        variants=variants,
        hyperparams=dict(data.get("hyperparams") or {}),
        imports=tuple(data.get("imports") or ()),
    )


def _env_spec(env_id: str, entry: dict[str, Any], where: str) -> EnvSpec:
    _check_keys(where, entry, ENV_KEYS, required=("n_timesteps", "eval_freq", "score_range", "threshold"))
    for name in ("n_timesteps", "eval_freq", "n_eval_episodes", "n_eval_envs", "transfer_episodes"):
        if name in entry and (not isinstance(entry[name], (int, float)) or entry[name] < 1):
            raise ValueError(f"{where}: {name}={entry[name]!r}: must be a number >= 1")
    if "transfer_episodes" in entry and "transfer_envs" not in entry:
        raise ValueError(f"{where}: transfer_episodes without transfer_envs")
    low, high = entry["score_range"]
    if not low < high:
        raise ValueError(f"{where}: score_range={entry['score_range']!r}: must be [random return, optimal return], low < high")
    return EnvSpec(
        env_id=env_id,
        n_timesteps=int(entry["n_timesteps"]),
        eval_freq=int(entry["eval_freq"]),
        score_range=(float(low), float(high)),
        threshold=float(entry["threshold"]),
        n_eval_episodes=int(entry.get("n_eval_episodes", 20)),
        n_eval_envs=int(entry.get("n_eval_envs", 4)),
        env_kwargs=dict(entry.get("env_kwargs") or {}),
        hyperparams=dict(entry.get("hyperparams") or {}),
        transfer_envs=_transfer_envs(entry.get("transfer_envs"), f"{where}.transfer_envs"),
        transfer_episodes=int(entry.get("transfer_episodes", entry.get("n_eval_episodes", 20))),
    )


def _transfer_envs(entry: Any, where: str) -> dict[str, dict[str, Any]]:
    if entry is None:
        return {}
    if not isinstance(entry, dict) or not entry:
        raise ValueError(f"{where}: must be a non-empty mapping of level name -> {{env_id: ..., env_kwargs: {{...}}}}")
    levels = {}
    for level, spec in entry.items():
        _check_keys(f"{where}.{level}", spec, TRANSFER_LEVEL_KEYS, required=("env_id",))
        levels[str(level)] = {"env_id": str(spec["env_id"]), "env_kwargs": dict(spec.get("env_kwargs") or {})}
    return levels


def _variant_spec(name: str, entry: dict[str, Any], where: str) -> VariantSpec:
    _check_keys(where, entry, VARIANT_KEYS, required=("algo",))
    hyperparams = dict(entry.get("hyperparams") or {})
    init_from = entry.get("init_from")
    if init_from is not None:
        try:
            str(init_from).format(seed=0)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"{where}: init_from={init_from!r}: only {{seed}} may be substituted ({error!r})") from error
        if hyperparams.get("normalize"):
            raise ValueError(f"{where}: init_from with normalize: a finished run keeps no VecNormalize statistics")
    return VariantSpec(
        name=name,
        algo=entry["algo"],
        policy=entry.get("policy", "MlpPolicy"),
        hyperparams=hyperparams,
        init_from=None if init_from is None else str(init_from),
    )


def _check_keys(where: str, entry: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a mapping, got {entry!r}")
    for key in entry:
        if key not in allowed:
            raise ValueError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in entry:
            raise ValueError(f"{where}: the key {key!r} is required")


def _checked_subset(kind: str, wanted: Iterable[str] | None, known: list[str]) -> set[str]:
    if wanted is None:
        return set(known)
    wanted = set(wanted)
    unknown = wanted - set(known)
    if unknown:
        raise ValueError(f"--{kind} {sorted(unknown)}: not in the suite; known: {known}")
    return wanted
