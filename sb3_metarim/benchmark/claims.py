"""
The verdicts of the paper's four claims (Madan et al. 2021) from the aggregates of the `paper` and
`paper_curriculum` suites (``summary.csv`` and ``transfer.csv``, written by ``python -m sb3_metarim.benchmark
aggregate``), as markdown tables. ``scripts/paper_claims.py`` writes them to ``benchmarks/paper/claims.md``.

- **Claim 1** (Fig. 3: the meta agent reaches a high return first, then the modular RIM, then the LSTM): per env, the
  mean frames to threshold of ``metarim_ppo_paper``, ``rim_ppo_paper`` and ``ppo_lstm``, on the evaluations and on the training
  return. *Holds* if they order metarim_ppo_paper < rim_ppo_paper < ppo_lstm with separate 95% CIs, *consistent* if the point
  estimates order so but a CI overlaps, *tied* if all three are equal, *not reproduced* otherwise (with the order
  observed, best first), *not testable* where no run of the three reached the threshold.
- **Claim 2** (Table 1: trained on the easy level only, the meta agent transfers to harder levels better than the
  LSTM): per training env with transfer levels, the IQM return and success of ``metarim_ppo_paper`` and ``ppo_lstm`` on
  each level. *Holds* if the meta agent's return and success exceed the LSTM's on the medium and difficult levels
  with separate CIs and its return drops less from easy to difficult, *consistent* if the point estimates do so,
  *not reproduced* otherwise.
- **Claim 3** (Fig. 4a: pretrained on GoToLocal, the meta agent adapts to PickupLoc faster than an LSTM pretrained
  the same way): the IQM AUC of ``metarim_ppo_paper_from_gotolocal`` and ``ppo_lstm_from_gotolocal``, with the same
  algorithms from scratch beside them. *Holds* if the meta agent's is larger with separate CIs, *consistent* if its
  point estimate is, *not reproduced* otherwise.
- **Claim 4** (Fig. 4b: the meta-LSTM beats the LSTM, the meta-RIM beats both): per env, the IQM normalized area
  under the curve. *Holds* if metalstm_ppo > ppo_lstm and metarim_ppo_paper > both with separate CIs, *consistent* if the
  point estimates order so, *not reproduced* otherwise (with the order observed).

A verdict needs every variant it names on the env, with the same number of finished seeds (``min_seeds``, 3 by
default); below that the row says how many seeds it has and gives no verdict.
"""

import itertools
from collections.abc import Callable

import pandas as pd

ORDER_1 = ("metarim_ppo_paper", "rim_ppo_paper", "ppo_lstm")  # fastest first, as the paper claims
ORDER_4 = ("metarim_ppo_paper", "metalstm_ppo", "ppo_lstm")  # best first
ORDER_2 = ("metarim_ppo_paper", "ppo_lstm")  # best first, on every harder level
HARDER_LEVELS = ("medium", "difficult")
FINE_TUNED = ("metarim_ppo_paper_from_gotolocal", "ppo_lstm_from_gotolocal")  # best first
CURRICULUM = (*FINE_TUNED, "metarim_ppo_paper", "ppo_lstm")
# (title, metric, format) of the columns of claims 1, 3 and 4.
FRAMES = [
    ("frames to threshold (eval)", "frames_to_threshold", ".0f"),
    ("frames to threshold (training return)", "train_frames_to_threshold", ".0f"),
]
AUCS = [("IQM AUC (eval)", "auc", ".3f"), ("IQM AUC (training return)", "train_auc", ".3f")]
DEFAULT_MIN_SEEDS = 3


def ordered(rows: pd.DataFrame, metric: str, best_first: tuple[str, ...], lower_is_better: bool) -> str:
    """
    :param rows: One env's summary rows, indexed by variant, with ``metric``, ``metric_low`` and ``metric_high``.
    :param metric: The column compared.
    :param best_first: The variants in the claimed order.
    :param lower_is_better: Whether a smaller value is better (frames) or a larger one (AUC).
    :return: ``"holds"``, ``"consistent"``, ``"tied"`` (all equal: e.g. every variant reached the threshold at the
        same evaluation) or ``"not reproduced"``, the last with the order observed, best first.
    """
    values = rows.loc[list(best_first), metric]
    if values.nunique() == 1:
        return "tied"
    sign = -1 if lower_is_better else 1
    pairs = list(itertools.pairwise(best_first))
    if not all(sign * values[better] > sign * values[worse] for better, worse in pairs):
        observed = sorted(best_first, key=lambda variant: -sign * values[variant])
        return f"not reproduced ({' > '.join(observed)})"
    if lower_is_better:
        separate = all(rows.loc[better, f"{metric}_high"] < rows.loc[worse, f"{metric}_low"] for better, worse in pairs)
    else:
        separate = all(rows.loc[better, f"{metric}_low"] > rows.loc[worse, f"{metric}_high"] for better, worse in pairs)
    return "holds" if separate else "consistent"


def transfer_verdict(levels: pd.DataFrame) -> str:
    """
    :param levels: One training env's ``transfer.csv`` rows, indexed by ``(variant, level)``.
    :return: claim 2's verdict: ``"holds"``, ``"consistent"`` or ``"not reproduced"`` (with what fails).
    """
    meta, lstm = (levels.loc[variant] for variant in ORDER_2)
    failures = [
        f"{metric} on {level}"
        for level in HARDER_LEVELS
        for metric in ("return", "success")
        if not meta.loc[level, metric] > lstm.loc[level, metric]
    ]
    drops = [rows.loc["easy", "return"] - rows.loc["difficult", "return"] for rows in (meta, lstm)]
    if not drops[0] < drops[1]:
        failures.append("drop from easy to difficult")
    if failures:
        return f"not reproduced (the meta agent not better: {', '.join(failures)})"
    separate = all(
        meta.loc[level, f"{metric}_low"] > lstm.loc[level, f"{metric}_high"]
        for level in HARDER_LEVELS
        for metric in ("return", "success")
    )
    return "holds" if separate else "consistent"


def claim_1(summary: pd.DataFrame, min_seeds: int = DEFAULT_MIN_SEEDS) -> list[str]:
    """
    :param summary: The `paper` suite's ``summary.csv``.
    :param min_seeds: Finished seeds a verdict needs.
    :return: claim 1's markdown table: frames to threshold of :data:`ORDER_1`, per env.
    """

    def verdict(rows: pd.DataFrame, prefix: str) -> str:
        if rows.loc[list(ORDER_1), f"{prefix}reached"].sum() == 0:
            return "not testable (none reached the threshold)"
        return ordered(rows, f"{prefix}frames_to_threshold", ORDER_1, lower_is_better=True)

    return claim_table(summary, ORDER_1, FRAMES, verdict, min_seeds)


def claim_2(transfer: pd.DataFrame, min_seeds: int = DEFAULT_MIN_SEEDS) -> list[str]:
    """
    :param transfer: The `paper` suite's ``transfer.csv``.
    :param min_seeds: Finished seeds a verdict needs.
    :return: claim 2's markdown table: per training env, level and variant, the return and success, the verdict.
    """
    lines = [
        "| trained on | level (env) | variant | seeds | return | success | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for env_id, rows in transfer.groupby("env_id", sort=False):
        runs = rows.groupby("variant")["runs"].min()
        present = list(runs.index)
        if enough_seeds(runs, ORDER_2, min_seeds):
            verdict = transfer_verdict(rows.set_index(["variant", "level"]))
        else:
            verdict = too_early(runs, present)
        for _, row in rows.iterrows():
            values = [cell(row, "return", ".3f"), cell(row, "success", ".3f")]
            lines.append(
                f"| {env_id} | {row['level']} ({row['level_env_id']}) | {row['variant']} | {int(row['runs'])} | "
                + " | ".join(values)
                + f" | {verdict} |"
            )
            verdict = ""
    return lines


def claim_3(curriculum: pd.DataFrame, min_seeds: int = DEFAULT_MIN_SEEDS) -> list[str]:
    """
    :param curriculum: The `paper_curriculum` suite's ``summary.csv``.
    :param min_seeds: Finished seeds a verdict needs (of the fine-tuned variants only).
    :return: claim 3's markdown table: AUC and frames to threshold of :data:`CURRICULUM`, the verdict on
        :data:`FINE_TUNED`.
    """

    def verdict(rows: pd.DataFrame, prefix: str) -> str:
        return ordered(rows, f"{prefix}auc", FINE_TUNED, lower_is_better=False)

    return claim_table(curriculum, CURRICULUM, AUCS + FRAMES, verdict, min_seeds, needed=FINE_TUNED)


def claim_4(summary: pd.DataFrame, min_seeds: int = DEFAULT_MIN_SEEDS) -> list[str]:
    """
    :param summary: The `paper` suite's ``summary.csv``.
    :param min_seeds: Finished seeds a verdict needs.
    :return: claim 4's markdown table: the AUC of :data:`ORDER_4`, per env.
    """

    def verdict(rows: pd.DataFrame, prefix: str) -> str:
        return ordered(rows, f"{prefix}auc", ORDER_4, lower_is_better=False)

    return claim_table(summary, ORDER_4, AUCS, verdict, min_seeds)


def cell(row: pd.Series, metric: str, fmt: str) -> str:
    """:return: ``point [low, high]`` of ``metric`` in ``row``, each formatted with ``fmt``."""
    return f"{row[metric]:{fmt}} [{row[f'{metric}_low']:{fmt}}, {row[f'{metric}_high']:{fmt}}]"


def claim_table(
    summary: pd.DataFrame,
    variants: tuple[str, ...],
    columns: list[tuple[str, str, str]],
    verdict: Callable[[pd.DataFrame, str], str],
    min_seeds: int,
    needed: tuple[str, ...] | None = None,
) -> list[str]:
    """
    :param summary: A suite's ``summary.csv``.
    :param variants: The variants shown, in this order.
    :param columns: ``(title, metric, format)`` per value column.
    :param verdict: ``f(rows, prefix) -> str``, the verdict of one env's rows for the metric prefix ``""`` or
        ``"train_"``.
    :param min_seeds: Finished seeds a verdict needs.
    :param needed: The variants the verdict compares (default: all of ``variants``): each must have the same number
        of finished seeds, at least ``min_seeds``.
    :return: the markdown lines of the table: one row per env and variant, the verdicts on each env's first row.
    """
    lines = [
        "| env | variant | seeds | "
        + " | ".join(title for title, _, _ in columns)
        + " | verdict | verdict (training return) |",
        "|---|---|---|" + "---|" * (len(columns) + 2),
    ]
    for env_id, rows in summary.groupby("env_id", sort=False):
        rows = rows.set_index("variant")
        present = [variant for variant in variants if variant in rows.index]
        if enough_seeds(rows["runs"], needed or variants, min_seeds):
            verdicts = [verdict(rows, ""), verdict(rows, "train_")]
        else:
            verdicts = [too_early(rows["runs"], present), ""]
        for position, variant in enumerate(present):
            row = rows.loc[variant]
            values = [cell(row, metric, fmt) for _, metric, fmt in columns]
            ends = verdicts if position == 0 else ["", ""]
            lines.append(f"| {env_id} | {variant} | {int(row['runs'])} | " + " | ".join(values + ends) + " |")
    return lines


def enough_seeds(runs: pd.Series, needed: tuple[str, ...], min_seeds: int) -> bool:
    """
    :param runs: Finished seeds per variant.
    :param needed: The variants a verdict compares.
    :param min_seeds: Finished seeds a verdict needs.
    :return: whether every variant of ``needed`` has the same number of finished seeds, at least ``min_seeds``.
    """
    if not all(variant in runs.index for variant in needed):
        return False
    seeds = {int(runs[variant]) for variant in needed}
    return len(seeds) == 1 and min(seeds) >= min_seeds


def too_early(runs: pd.Series, present: list[str]) -> str:
    """:return: the verdict cell of an env without enough seeds: each present variant's finished seeds."""
    return "too early (seeds: " + ", ".join(f"{variant} {int(runs[variant])}" for variant in present) + ")"
