"""
Aggregate a suite's evaluations the way Agarwal et al. (2021) recommend, with ``rliable``: from its committed long
table, brought up to date with the finished runs of the working directory first (:mod:`sb3_metarim.benchmark.store`).

Per run: the final return (last evaluation), the normalized area under the curve (the mean normalized score over
training, trapezoids over the evaluation steps), and the frames to threshold (the first evaluation at or above the
env's threshold; a run that never gets there counts as one evaluation interval after its last evaluation, a
censored value, and the table says how many got there), and whether it collapsed after learning (once its best
normalized score reached 0.5, two evaluations in a row more than 20% below that best); the same final return, AUC
and frames to threshold of its training return (SB3's log of the sampling policy's episodes, read at the evaluation
steps: :mod:`sb3_metarim.benchmark.training_log`). Per env and variant: the
interquartile mean (IQM) of each, with a 95% bootstrap confidence interval. Over the suite: IQM of normalized final
scores and AUCs with stratified-bootstrap CIs and performance profiles. Only finished runs count.
"""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics, plot_utils

from sb3_metarim.benchmark import store
from sb3_metarim.benchmark.spec import EnvSpec, SuiteSpec
from sb3_metarim.benchmark.stats import (
    BOOTSTRAP_REPS,
    ci_text,
    interval,
    iqm_curve,
    iqm_interval,
    mean_interval,
    seeded_numpy,
)
from sb3_metarim.benchmark.transfer import append_report

# Per run, of the deterministic evaluations and (prefixed ``train_``) of the training return.
TRAINING_METRICS = ("final_return", "auc", "frames_to_threshold", "reached")
SUMMARY_METRICS = (("final_return", iqm_interval), ("auc", iqm_interval), ("frames_to_threshold", mean_interval))


def run_metrics(curve: pd.DataFrame, env: EnvSpec, value: str = "return_mean") -> dict[str, float]:
    """
    :param curve: One run's evaluations (``timesteps`` and ``value``), in order.
    :param env: The run's env.
    :param value: The return column: ``"return_mean"`` (deterministic evaluations) or ``"train_return"``.
    :return: ``final_return``, ``final_score`` (normalized), ``auc`` (normalized) and ``frames_to_threshold``
        (when never reached, censored at the step after the run's last evaluation, one ``eval_freq`` later, so
        that it ranks after any run that reached the threshold at an evaluation) with ``reached`` (1.0 or 0.0).
    """
    steps = curve["timesteps"].to_numpy(dtype=float)
    returns = curve[value].to_numpy(dtype=float)
    scores = env.normalize_score(returns)
    auc = np.trapezoid(scores, steps) / (steps[-1] - steps[0]) if len(steps) > 1 else scores[-1]
    above = np.flatnonzero(returns >= env.threshold)
    return {
        "final_return": returns[-1],
        "final_score": scores[-1],
        "auc": float(auc),
        "frames_to_threshold": steps[above[0]] if len(above) else steps[-1] + env.eval_freq,
        "reached": float(len(above) > 0),
        "collapsed": float(collapsed(scores)),
    }


def collapsed(scores: np.ndarray, drop: float = 0.2, learned: float = 0.5) -> bool:
    """
    A collapse after learning: once the run has learned (its best normalized score so far is
    at least ``learned``), two evaluations in a row more than ``drop`` of that best below it. A run that never
    learned has nothing to collapse from: its evaluations near chance only fluctuate.

    :param scores: One run's normalized evaluation scores, in order.
    :param drop: Fraction of the best score so far that counts as a collapse.
    :param learned: Normalized score from which a run counts as having learned.
    :return: whether the run collapsed.
    """
    best = np.maximum.accumulate(scores)
    low = (best >= learned) & (scores < (1 - drop) * best)
    return bool(np.any(low[1:] & low[:-1]))


def per_run_table(suite: SuiteSpec, results: pd.DataFrame) -> pd.DataFrame:
    """
    :return: one row per finished run: ``env_id``, ``variant``, ``seed``, :func:`run_metrics` of its evaluations
        and, prefixed ``train_``, :data:`TRAINING_METRICS` of its training return (NaN where it logged none).
    """
    rows = []
    for (env_id, variant, seed), curve in results.groupby(["env_id", "variant", "seed"], sort=False):
        curve, env = curve.sort_values("timesteps"), suite.env(env_id)
        training = curve.dropna(subset=["train_return"])
        train_metrics = run_metrics(training, env, "train_return") if len(training) else {}
        rows.append(
            {
                "env_id": env_id,
                "variant": variant,
                "seed": seed,
                **run_metrics(curve, env),
                **{f"train_{metric}": train_metrics.get(metric, np.nan) for metric in TRAINING_METRICS},
            }
        )
    return pd.DataFrame(rows)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """
    :return: per env and variant: runs, IQM final return, IQM normalized AUC, mean frames to threshold, with CIs,
        runs that reached the threshold and collapses; the same (prefixed ``train_``) of the training return, over
        the runs that logged one (``train_runs``).
    """
    rows = []
    for (env_id, variant), group in runs.groupby(["env_id", "variant"], sort=False):
        row: dict[str, Any] = {"env_id": env_id, "variant": variant, "runs": len(group)}
        training = group.dropna(subset=["train_final_return"])
        row["train_runs"] = len(training)
        for prefix, rows_of in (("", group), ("train_", training)):
            for metric, estimate in SUMMARY_METRICS:
                name = prefix + metric
                values = rows_of[name].to_numpy(dtype=float)
                row[name], row[f"{name}_low"], row[f"{name}_high"] = estimate(values) if len(values) else (np.nan,) * 3
            row[f"{prefix}reached"] = int(rows_of[f"{prefix}reached"].sum())
        row["collapses"] = int(group["collapsed"].sum())
        rows.append(row)
    return pd.DataFrame(rows)


def verdicts(summary: pd.DataFrame, candidate: str, baseline: str) -> pd.DataFrame:
    """
    Per env where both ran, ``candidate`` against ``baseline`` on the two claims (final return, frames to
    threshold), on point estimates, each qualified by the 95% CIs: ``final`` is ``"yes"`` (IQM final return at least
    the baseline's) or ``"no"``;
    ``frames`` is ``"yes"`` (mean frames to threshold at most the baseline's), ``"no"``, or ``"neither reached"``
    when no run of either got to the threshold: a tie of censored values says nothing, so it is not counted as a yes.
    ``final_ci`` and ``frames_ci`` say whether the intervals are ``"separate"`` or ``"overlap"``.

    :return: one row per env with ``env_id``, ``final``, ``final_ci``, ``frames``, ``frames_ci``.
    """
    rows = []
    for env_id, group in summary.groupby("env_id", sort=False):
        by_variant = group.set_index("variant")
        if candidate not in by_variant.index or baseline not in by_variant.index:
            continue
        mine, theirs = by_variant.loc[candidate], by_variant.loc[baseline]
        frames = "yes" if mine["frames_to_threshold"] <= theirs["frames_to_threshold"] else "no"
        if mine["reached"] == 0 and theirs["reached"] == 0:
            frames = "neither reached"
        rows.append(
            {
                "env_id": env_id,
                "final": "yes" if mine["final_return"] >= theirs["final_return"] else "no",
                "final_ci": _overlap(mine, theirs, "final_return"),
                "frames": frames,
                "frames_ci": _overlap(mine, theirs, "frames_to_threshold"),
            }
        )
    return pd.DataFrame(rows, columns=["env_id", "final", "final_ci", "frames", "frames_ci"])


def _overlap(mine: pd.Series, theirs: pd.Series, metric: str) -> str:
    separate = mine[f"{metric}_low"] > theirs[f"{metric}_high"] or mine[f"{metric}_high"] < theirs[f"{metric}_low"]
    return "separate" if separate else "overlap"


def suite_aggregates(suite: SuiteSpec, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """
    IQM over the suite of normalized final scores and AUCs, on the seeds finished for every env of a variant.

    :return: a table (variant, metric, IQM, CI) and, per variant, the (runs x envs) matrix of final scores.
    """
    rows, finals = [], {}
    env_ids = [env.env_id for env in suite.envs]
    for variant, group in runs.groupby("variant", sort=False):
        complete = group.groupby("seed").filter(lambda seed_runs: set(seed_runs["env_id"]) == set(env_ids))
        if complete.empty:
            continue
        for metric in ("final_score", "auc"):
            matrix = complete.pivot(index="seed", columns="env_id", values=metric)[env_ids].to_numpy(dtype=float)
            if metric == "final_score":
                finals[variant] = matrix
            iqm, low, high = interval(matrix, metrics.aggregate_iqm)
            rows.append({"variant": variant, "metric": metric, "iqm": iqm, "low": low, "high": high, "seeds": len(matrix)})
    return pd.DataFrame(rows), finals


def variant_colors(suite: SuiteSpec) -> dict[str, Any]:
    """:return: one colour per variant, in the suite's order, the same in every panel and plot."""
    palette = plt.get_cmap("tab10").colors
    return {variant.name: palette[i % len(palette)] for i, variant in enumerate(suite.variants)}


CURVE_LABELS = {
    "return_mean": "evaluation return",
    "success_rate": "evaluation success rate",
    "train_return": "training return (last 100 episodes)",
}


def plot_curves(suite: SuiteSpec, results: pd.DataFrame, path: Path, value: str = "return_mean") -> None:
    """
    Per env: the IQM over seeds of ``value`` against steps, with a 95% bootstrap band.

    :param value: ``"return_mean"``, ``"success_rate"`` or ``"train_return"`` (envs without that value are left
        out).
    """
    colors = variant_colors(suite)
    results = results.dropna(subset=[value])
    envs = [env for env in suite.envs if env.env_id in set(results["env_id"])]
    columns = min(3, max(len(envs), 1))
    rows = (len(envs) + columns - 1) // columns
    fig, axes = plt.subplots(max(rows, 1), columns, figsize=(5 * columns, 3.6 * max(rows, 1)), squeeze=False)
    for ax, env in zip(axes.flat, envs, strict=False):
        for variant, group in results[results["env_id"] == env.env_id].groupby("variant", sort=False):
            table = group.pivot_table(index="seed", columns="timesteps", values=value).dropna(axis=1)
            iqm, low, high = iqm_curve(table.to_numpy(dtype=float))
            ax.plot(table.columns, iqm, color=colors[variant], label=f"{variant} ({len(table)} seeds)")
            ax.fill_between(table.columns, low, high, color=colors[variant], alpha=0.2)
        if value != "success_rate":
            ax.axhline(env.threshold, color="grey", linestyle=":", linewidth=1)
        ax.set(title=env.env_id, xlabel="environment steps", ylabel=f"{CURVE_LABELS[value]} (IQM, 95% CI)")
    for ax in list(axes.flat)[len(envs) :]:
        ax.axis("off")
    for ax in list(axes.flat)[: len(envs)]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_profiles(finals: dict[str, np.ndarray], colors: dict[str, Any], path: Path) -> None:
    """Performance profiles (fraction of runs above each normalized score) of the final scores, with CIs."""
    taus = np.linspace(-0.25, 1.25, 61)
    with seeded_numpy():
        profiles, intervals = rly.create_performance_profile(finals, taus, reps=BOOTSTRAP_REPS)
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=intervals, colors=colors, ax=ax, xlabel="normalized score"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def aggregate_suite(
    suite: SuiteSpec,
    runs_root: Path,
    results_root: Path,
    command: str,
    candidate: str | None = None,
    baseline: str = "ppo_lstm",
) -> Path:
    """
    Bring the suite's long tables up to date (:func:`sb3_metarim.benchmark.store.update`), then write from them
    ``runs.csv``, ``summary.csv``, ``summary.md``, ``curves.png``, ``success.png`` (where an env reports success),
    ``training.png`` (training returns, where logged), ``profile.png`` and, with transfer levels, ``transfer.csv``
    to ``results_root/<suite>/``. Only the runs of the suite's grid count.

    :param suite: The suite.
    :param runs_root: The working directory of the runs (finished runs there are merged into the tables).
    :param results_root: The folder of the committed results.
    :param command: The command that ran the aggregation (written in the report).
    :param candidate: Variant whose claim the verdict table checks (default: the suite's first).
    :param baseline: Variant it is compared with.
    :return: the markdown report's path.
    """
    folder = Path(results_root) / suite.name
    candidate = candidate or suite.variants[0].name
    tables = store.update(suite, runs_root, results_root)
    results = store.in_grid(tables.evaluations, suite)
    if results.empty:
        raise ValueError(
            f"suite {suite.name!r}: no finished run in {Path(runs_root) / suite.name} nor in {folder}; run the suite first"
        )
    runs = per_run_table(suite, results)
    summary = summary_table(runs)
    runs.to_csv(folder / "runs.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    plot_curves(suite, results, folder / "curves.png")
    with_success = bool(results["success_rate"].notna().any())
    if with_success:
        plot_curves(suite, results, folder / "success.png", value="success_rate")
    with_training = bool(results["train_return"].notna().any())
    if with_training:
        plot_curves(suite, results, folder / "training.png", value="train_return")
    aggregates, finals = suite_aggregates(suite, runs)
    if finals:
        plot_profiles(finals, variant_colors(suite), folder / "profile.png")
    report = folder / "summary.md"
    report.write_text(
        _markdown(
            suite,
            summary,
            verdicts(summary, candidate, baseline),
            aggregates,
            command,
            candidate,
            baseline,
            {"success.png": with_success, "training.png": with_training},
            store.in_grid(tables.configs, suite),
        )
    )
    append_report(suite, store.in_grid(tables.transfers, suite), report)
    return report


def _markdown(
    suite: SuiteSpec,
    summary: pd.DataFrame,
    verdict: pd.DataFrame,
    aggregates: pd.DataFrame,
    command: str,
    candidate: str,
    baseline: str,
    figures: dict[str, bool],
    configs: pd.DataFrame,
) -> str:
    lines = [
        f"# Suite `{suite.name}`: {len(summary['env_id'].unique())} envs, variants {', '.join(summary['variant'].unique())}",
        "",
        "Deterministic evaluation on separate envs. IQM = interquartile mean over seeds; [low, high] = 95% bootstrap CI "
        "(rliable). AUC = mean normalized score over training (0 = `score_range[0]`, 1 = `score_range[1]`). Frames to "
        "threshold: the mean over seeds, a run that never reached the threshold counting as one evaluation interval "
        "after its last evaluation (a censored value). Collapses: runs "
        "that, once their best normalized score reached 0.5, fell more than 20% below that best for two evaluations in "
        "a row.",
        "",
        "| env | variant | runs | IQM final return | IQM AUC | frames to threshold | reached | collapses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_summary_row(row, "", row["collapses"]) for row in summary.to_dict("records")]
    if not verdict.empty:
        final_wins, frame_wins = int((verdict["final"] == "yes").sum()), int((verdict["frames"] == "yes").sum())
        lines += [
            "",
            f"## `{candidate}` against `{baseline}`",
            "",
            "Point estimates, with whether the 95% CIs are separate or overlap (overlapping: the seeds do not settle it). "
            "Where no run of either reached the threshold, the frames tie and do not count as a yes.",
            "",
            f"| env | IQM final return >= {baseline} | frames to threshold <= {baseline} |",
            "|---|---|---|",
            *(
                f"| {row.env_id} | {_yes(row.final)} (CIs {row.final_ci}) | {_yes(row.frames)} (CIs {row.frames_ci}) |"
                for row in verdict.itertuples()
            ),
            f"| **total** | **{final_wins} of {len(verdict)}** | **{frame_wins} of {len(verdict)}** |",
        ]
    if not aggregates.empty:
        lines += [
            "",
            "## Over the suite (normalized; seeds finished on every env)",
            "",
            "| variant | metric | seeds | IQM |",
            "|---|---|---|---|",
            *(
                f"| {row.variant} | {row.metric} | {row.seeds} | {ci_text(row.iqm, row.low, row.high)} |"
                for row in aggregates.itertuples()
            ),
            "",
            "![performance profiles](profile.png)",
        ]
    if figures["training.png"]:
        lines += _training_markdown(summary)
    lines += [
        "",
        "![learning curves](curves.png)",
        *(["", "![success rate](success.png)"] if figures["success.png"] else []),
        *(["", "![training returns](training.png)"] if figures["training.png"] else []),
        "",
        f"Command: `{command}`. {_provenance(configs)}",
        "",
    ]
    return "\n".join(lines)


def _provenance(configs: pd.DataFrame) -> str:
    """:return: the versions the runs were made with (each distinct value, over the runs) and their Python."""
    versions: dict[str, set[str]] = {}
    for record in configs.get("versions", pd.Series(dtype=object)).dropna():
        for package, version in record.items():
            versions.setdefault(package, set()).add(version)
    listed = [f"{package} {' / '.join(sorted(found))}" for package, found in versions.items()]
    pythons = sorted(set(configs.get("python", pd.Series(dtype=object)).dropna()))
    if pythons:
        listed.append(f"Python {' / '.join(pythons)}")
    return f"Runs made with {', '.join(listed)}." if listed else ""


def _training_markdown(summary: pd.DataFrame) -> list[str]:
    lines = [
        "",
        "## Training returns (the sampling policy)",
        "",
        "SB3's `rollout/ep_rew_mean` (mean return of the last 100 training episodes of the stochastic policy, the "
        "curves BabyAI and rl-starter-files report) read at the evaluation steps; the same statistics as above.",
        "",
        "| env | variant | runs | IQM final training return | IQM AUC | frames to threshold | reached |",
        "|---|---|---|---|---|---|---|",
    ]
    return lines + [_summary_row(row, "train_") for row in summary[summary["train_runs"] > 0].to_dict("records")]


def _summary_row(row: dict[str, Any], prefix: str, *extra: Any) -> str:
    """One markdown row of :func:`summary_table`'s metrics with that prefix (``""`` or ``"train_"``)."""
    runs = row[f"{prefix}runs"]
    cells = [
        row["env_id"],
        row["variant"],
        runs,
        _metric_ci(row, f"{prefix}final_return"),
        _metric_ci(row, f"{prefix}auc"),
        _metric_ci(row, f"{prefix}frames_to_threshold", ".0f"),
        f"{row[f'{prefix}reached']}/{runs}",
        *extra,
    ]
    return "| " + " | ".join(map(str, cells)) + " |"


def _metric_ci(row: dict[str, Any], metric: str, fmt: str = ".3f") -> str:
    return ci_text(row[metric], row[f"{metric}_low"], row[f"{metric}_high"], fmt)


def _yes(value: str) -> str:
    return value if value == "yes" else f"**{value}**"
