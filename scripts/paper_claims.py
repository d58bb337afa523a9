"""
The verdicts of the paper's four claims, computed from the aggregates of the `paper` suite
(``benchmarks/paper/summary.csv`` and ``transfer.csv``, written by ``python -m sb3_metarim.benchmark aggregate
paper``) and of the `paper_curriculum` suite (``benchmarks/paper_curriculum/summary.csv``) by the rules
docs/results.md states, and written as markdown tables to ``benchmarks/paper/claims.md``.

.. code-block:: bash

    python -m sb3_metarim.benchmark aggregate paper && python -m sb3_metarim.benchmark aggregate paper_curriculum
    python scripts/paper_claims.py

- **Claim 1** (Madan et al. 2021, Fig. 3: the meta agent reaches a high return first, then the modular RIM, then the
  LSTM): per env, the mean frames to threshold of ``metarim_ppo``, ``rim_ppo`` and ``ppo_lstm``, on the evaluations
  and on the training return. *Holds* if they order metarim_ppo < rim_ppo < ppo_lstm with separate 95% CIs,
  *consistent* if the point estimates order so but a CI overlaps, *tied* if all three are equal, *not reproduced*
  otherwise (with the order observed, best first), *not testable* where no run of the three reached the threshold.
- **Claim 2** (Table 1: trained on the easy level only, the meta agent transfers to harder levels better than the
  LSTM): per training env with transfer levels, the IQM return and success of ``metarim_ppo`` and ``ppo_lstm`` on
  each level. *Holds* if the meta agent's return and success exceed the LSTM's on the medium and difficult levels
  with separate CIs and its return drops less from easy to difficult, *consistent* if the point estimates do so,
  *not reproduced* otherwise.
- **Claim 3** (Fig. 4a: pretrained on GoToLocal, the meta agent adapts to PickupLoc faster than an LSTM pretrained
  the same way): the IQM AUC of ``metarim_ppo_from_gotolocal`` and ``ppo_lstm_from_gotolocal``, with the same
  algorithms from scratch beside them. *Holds* if the meta agent's is larger with separate CIs, *consistent* if its
  point estimate is, *not reproduced* otherwise.
- **Claim 4** (Fig. 4b: the meta-LSTM beats the LSTM, the meta-RIM beats both): per env, the IQM normalized area
  under the curve. *Holds* if metalstm_ppo > ppo_lstm and metarim_ppo > both with separate CIs, *consistent* if the
  point estimates order so, *not reproduced* otherwise (with the order observed).

A verdict needs every variant it names on the env, with the same number of finished seeds (``--min-seeds``,
default 3); below that the row says how many seeds it has and gives no verdict.
"""

import argparse
import itertools
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ORDER_1 = ("metarim_ppo", "rim_ppo", "ppo_lstm")  # fastest first, as the paper claims
ORDER_4 = ("metarim_ppo", "metalstm_ppo", "ppo_lstm")  # best first
ORDER_2 = ("metarim_ppo", "ppo_lstm")  # best first, on every harder level
HARDER_LEVELS = ("medium", "difficult")
FINE_TUNED = ("metarim_ppo_from_gotolocal", "ppo_lstm_from_gotolocal")  # best first
CURRICULUM = (*FINE_TUNED, "metarim_ppo", "ppo_lstm")


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


def cell(row: pd.Series, metric: str, fmt: str) -> str:
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
    :param variants: The variants shown, in this order.
    :param columns: ``(title, metric, format)`` per value column; the verdict reads the first metric of each prefix.
    :param verdict: ``f(rows, prefix) -> str``, the verdict of one env's rows for the metric prefix ``""`` or
        ``"train_"``.
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
    """:return: whether every variant of ``needed`` has the same number of finished seeds ``runs``, >= ``min_seeds``."""
    if not all(variant in runs.index for variant in needed):
        return False
    seeds = {int(runs[variant]) for variant in needed}
    return len(seeds) == 1 and min(seeds) >= min_seeds


def too_early(runs: pd.Series, present: list[str]) -> str:
    return "too early (seeds: " + ", ".join(f"{variant} {int(runs[variant])}" for variant in present) + ")"


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


def transfer_table(transfer: pd.DataFrame, min_seeds: int) -> list[str]:
    """:return: claim 2's markdown lines: per training env, level and variant, the return and success, the verdict."""
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


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("benchmarks/paper/summary.csv"))
    parser.add_argument("--transfer", type=Path, help="claim 2's transfer.csv (default: beside the summary)")
    parser.add_argument(
        "--curriculum",
        type=Path,
        default=Path("benchmarks/paper_curriculum/summary.csv"),
        help="claim 3's paper_curriculum summary.csv",
    )
    parser.add_argument("--out", type=Path, help="markdown output (default: claims.md beside the summary)")
    parser.add_argument("--min-seeds", type=int, default=3, help="finished seeds a verdict needs (default 3)")
    args = parser.parse_args(argv)
    summary = pd.read_csv(args.summary)

    def claim_1(rows: pd.DataFrame, prefix: str) -> str:
        if rows.loc[list(ORDER_1), f"{prefix}reached"].sum() == 0:
            return "not testable (none reached the threshold)"
        return ordered(rows, f"{prefix}frames_to_threshold", ORDER_1, lower_is_better=True)

    def claim_4(rows: pd.DataFrame, prefix: str) -> str:
        return ordered(rows, f"{prefix}auc", ORDER_4, lower_is_better=False)

    def claim_3(rows: pd.DataFrame, prefix: str) -> str:
        return ordered(rows, f"{prefix}auc", FINE_TUNED, lower_is_better=False)

    transfer_path = args.transfer or args.summary.parent / "transfer.csv"
    claim_2 = ["No transfer results yet (`" + str(transfer_path) + "`)."]
    if transfer_path.exists():
        claim_2 = transfer_table(pd.read_csv(transfer_path), args.min_seeds)
    claim_3_lines = ["Not run yet (`" + str(args.curriculum) + "`)."]

    frames = [
        ("frames to threshold (eval)", "frames_to_threshold", ".0f"),
        ("frames to threshold (training return)", "train_frames_to_threshold", ".0f"),
    ]
    aucs = [("IQM AUC (eval)", "auc", ".3f"), ("IQM AUC (training return)", "train_auc", ".3f")]
    if args.curriculum.exists():
        curriculum = pd.read_csv(args.curriculum)
        claim_3_lines = claim_table(curriculum, CURRICULUM, aucs + frames, claim_3, args.min_seeds, needed=FINE_TUNED)
    command = " ".join(["python scripts/paper_claims.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    lines = [
        "# The paper's four claims from the `paper` and `paper_curriculum` suites",
        "",
        f"Computed from `{args.summary}`, `{transfer_path}` and `{args.curriculum}` by `{command}`; rules in the "
        "script's docstring and docs/results.md. Mean frames to threshold with 95% bootstrap CIs (a run that never "
        "reached it counts as one evaluation interval after its budget); IQM normalized AUC, IQM return and success "
        "with 95% CIs.",
        "",
        "## Claim 1: sample efficiency (frames to threshold: metarim_ppo < rim_ppo < ppo_lstm; '>' below: faster)",
        "",
        *claim_table(summary, ORDER_1, frames, claim_1, args.min_seeds),
        "",
        "## Claim 2: zero-shot transfer (trained on easy; metarim_ppo above ppo_lstm on the harder levels)",
        "",
        *claim_2,
        "",
        "## Claim 3: curriculum (fine-tuned on PickupLoc from GoToLocal; AUC: metarim_ppo above ppo_lstm)",
        "",
        *claim_3_lines,
        "",
        "## Claim 4: ablation (AUC: metarim_ppo > metalstm_ppo > ppo_lstm)",
        "",
        *claim_table(summary, ORDER_4, aucs, claim_4, args.min_seeds),
        "",
    ]
    out = args.out or args.summary.parent / "claims.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
