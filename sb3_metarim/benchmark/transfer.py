"""
Zero-shot transfer (an env's ``transfer_envs``): the table of the finished runs' transfer evaluations.

Per run the last evaluation (the trained model) on each level: its mean return and success rate over
``transfer_episodes`` deterministic episodes. Per training env, variant and level: the IQM over seeds of each, with a
95% bootstrap CI, as :mod:`sb3_metarim.benchmark.stats` computes them. :func:`append_report` writes
``transfer.csv`` (the table) to the suite's folder and appends the table to its markdown report.
"""

from pathlib import Path

import pandas as pd

from sb3_metarim.benchmark.spec import SuiteSpec
from sb3_metarim.benchmark.stats import ci_text, iqm_interval

TABLE_COLUMNS = (
    *("env_id", "variant", "level", "level_env_id", "runs", "timesteps"),
    *("return", "return_low", "return_high", "success", "success_low", "success_high"),
)


def final_levels(transfers: pd.DataFrame) -> pd.DataFrame:
    """
    :param transfers: Transfer evaluations (:mod:`sb3_metarim.benchmark.store`'s ``transfer.csv.gz`` rows).
    :return: each run's last evaluation of every level (the trained model's).
    """
    last = transfers.groupby(["env_id", "variant", "seed"], sort=False)["timesteps"].transform("max")
    return transfers[transfers["timesteps"] == last]


def transfer_table(suite: SuiteSpec, results: pd.DataFrame) -> pd.DataFrame:
    """
    :param suite: The suite (for the levels' order).
    :param results: :func:`final_levels`' rows.
    :return: per training env, variant and level (in the suite's order): runs, IQM return and IQM success rate
        over seeds with 95% bootstrap CIs (NaN success where the env reports none).
    """
    rows = []
    for env in suite.envs:
        for variant in suite.variants:
            for level, entry in env.transfer_envs.items():
                group = results[(results["env_id"] == env.env_id) & (results["variant"] == variant.name)]
                group = group[group["level"] == level]
                if group.empty:
                    continue
                row = {
                    "env_id": env.env_id,
                    "variant": variant.name,
                    "level": level,
                    "level_env_id": entry["env_id"],
                    "runs": len(group),
                    "timesteps": int(group["timesteps"].min()),
                }
                row["return"], row["return_low"], row["return_high"] = iqm_interval(group["return_mean"].to_numpy(float))
                success = group["success_rate"].to_numpy(float)
                interval = (float("nan"),) * 3 if pd.isna(success).any() else iqm_interval(success)
                row["success"], row["success_low"], row["success_high"] = interval
                rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def markdown(table: pd.DataFrame) -> list[str]:
    """:return: the table as markdown lines, one section per training env."""
    lines = []
    for env_id, group in table.groupby("env_id", sort=False):
        lines += [
            "",
            f"## Zero-shot transfer: trained on {env_id}",
            "",
            "Each level evaluated without training, deterministic, on envs seeded apart, at the end of training. "
            "IQM over seeds of each run's mean return and success rate, [95% bootstrap CI].",
            "",
            "| variant | level | env | runs | IQM return | IQM success |",
            "|---|---|---|---|---|---|",
        ]
        for row in group.to_dict("records"):
            success = "n/a" if pd.isna(row["success"]) else ci_text(row["success"], row["success_low"], row["success_high"])
            return_ci = ci_text(row["return"], row["return_low"], row["return_high"])
            cells = [row["variant"], row["level"], row["level_env_id"], row["runs"], return_ci, success]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def append_report(suite: SuiteSpec, transfers: pd.DataFrame, report: Path) -> pd.DataFrame:
    """
    Write ``transfer.csv`` (the table) beside ``report`` and append the table to it, if the suite has transfer
    evaluations; the aggregation's hook.

    :param transfers: The suite's transfer evaluations.
    :return: the table (empty without transfer evaluations).
    """
    table = pd.DataFrame(columns=TABLE_COLUMNS) if transfers.empty else transfer_table(suite, final_levels(transfers))
    if table.empty:
        return table
    table.to_csv(report.parent / "transfer.csv", index=False)
    with open(report, "a") as file:
        file.write("\n".join([*markdown(table), ""]))
    return table
