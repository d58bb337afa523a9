"""
A suite's results as committed data: three long tables in ``<results>/<suite>/``, which ``aggregate`` brings up to
date from the finished run folders of the working directory (``<runs>/<suite>/<env>/<variant>/seed<k>``, see
:mod:`sb3_metarim.benchmark.runner`) and then reads, so that every summary and plot reproduces from the committed
tables alone:

- ``evaluations.csv.gz``: every evaluation of every finished run: ``env_id``, ``variant``, ``seed``, the columns of
  the run's ``eval.csv`` and ``train_return``, SB3's training return at that step (NaN where none was logged);
- ``transfer.csv.gz``: every zero-shot transfer evaluation (the runs' ``transfer.csv`` rows, the level's env as
  ``level_env_id``), for suites with ``transfer_envs``;
- ``configs.jsonl.gz``: per finished run, its ``config.json`` (hyperparameters, versions, commit, machine, starts)
  and, as ``done``, its ``done.json``.

A finished run folder's rows replace that run's committed rows; committed rows of runs without a folder stay, so a
grid may be run in pieces, on several machines, and aggregated as its runs land. Run folders (checkpoints, logs,
models) stay out of version control.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sb3_metarim.benchmark.runner import DONE_FILE, TRANSFER_FILE
from sb3_metarim.benchmark.spec import RunSpec, SuiteSpec
from sb3_metarim.benchmark.training_log import training_return_at

KEYS = ["env_id", "variant", "seed"]
EVALUATIONS_FILE = "evaluations.csv.gz"
TRANSFERS_FILE = "transfer.csv.gz"
CONFIGS_FILE = "configs.jsonl.gz"
# gzip without a timestamp: the same tables give the same bytes, so an unchanged table is not a change in git.
GZIP = {"method": "gzip", "mtime": 0}


@dataclass
class SuiteResults:
    """A suite's three long tables (see the module's docstring), every run in them, in or out of the suite's grid."""

    evaluations: pd.DataFrame
    transfers: pd.DataFrame
    configs: pd.DataFrame


def update(suite: SuiteSpec, runs_root: Path, results_root: Path) -> SuiteResults:
    """
    Merge the finished run folders of ``runs_root`` into the suite's tables in ``results_root`` and write them
    (nothing is written when no run folder of the grid is finished).

    :param suite: The suite (its grid names the run folders that are read).
    :param runs_root: The working directory of the runs.
    :param results_root: The folder of the committed results (the tables go to ``results_root/<suite>/``).
    :return: the merged tables.
    """
    folder = Path(results_root) / suite.name
    committed = read(folder)
    finished = [spec for spec in suite.runs() if (spec.folder(runs_root) / DONE_FILE).exists()]
    if not finished:
        return committed
    results = SuiteResults(
        evaluations=_merge(committed.evaluations, [_evaluations(spec, runs_root) for spec in finished]),
        transfers=_merge(committed.transfers, [_transfers(spec, runs_root) for spec in finished]),
        configs=_merge(committed.configs, [_config(spec, runs_root) for spec in finished]),
    )
    if not results.evaluations.empty:
        folder.mkdir(parents=True, exist_ok=True)
        results.evaluations.to_csv(folder / EVALUATIONS_FILE, index=False, compression=GZIP)
        results.configs.to_json(folder / CONFIGS_FILE, orient="records", lines=True, compression=GZIP)
    if not results.transfers.empty:
        results.transfers.to_csv(folder / TRANSFERS_FILE, index=False, compression=GZIP)
    return results


def read(folder: Path) -> SuiteResults:
    """:return: the tables committed in ``folder`` (empty tables for those absent)."""
    evaluations, transfers, configs = (folder / name for name in (EVALUATIONS_FILE, TRANSFERS_FILE, CONFIGS_FILE))
    return SuiteResults(
        evaluations=_read_table(evaluations),
        transfers=_read_table(transfers),
        configs=_read_configs(configs),
    )


def _read_table(path: Path) -> pd.DataFrame:
    # round_trip: the floats read back are those written, so a table rewritten unchanged has the same bytes.
    return pd.read_csv(path, float_precision="round_trip") if path.exists() else pd.DataFrame(columns=KEYS)


def _read_configs(path: Path) -> pd.DataFrame:
    # The records as written: no guessing of dates or dtypes from the values.
    if not path.exists():
        return pd.DataFrame(columns=KEYS)
    return pd.read_json(path, lines=True, dtype=False, convert_dates=False)


def in_grid(table: pd.DataFrame, suite: SuiteSpec) -> pd.DataFrame:
    """:return: the rows of ``table`` of the suite's grid (its envs, variants and seeds), in the grid's order."""
    order = pd.DataFrame([(spec.env.env_id, spec.variant.name, spec.seed) for spec in suite.runs()], columns=KEYS).astype(
        {"seed": int}
    )
    return order.merge(table.astype({"seed": int}), on=KEYS, how="inner", sort=False)


def _merge(committed: pd.DataFrame, fresh: list[pd.DataFrame]) -> pd.DataFrame:
    """:return: ``committed`` with the rows of every run in ``fresh`` replaced by those, sorted by run."""
    fresh = [frame for frame in fresh if not frame.empty]
    if not fresh:
        return committed
    new = pd.concat(fresh, ignore_index=True)
    if committed.empty:
        return new.sort_values(KEYS, kind="stable", ignore_index=True)
    committed = committed.astype({"seed": int})
    replaced = committed.merge(new[KEYS].drop_duplicates(), on=KEYS, how="left", indicator=True)
    kept = committed[(replaced["_merge"] == "left_only").to_numpy()]
    merged = pd.concat([frame for frame in (kept, new) if not frame.empty], ignore_index=True)
    return merged.sort_values(KEYS, kind="stable", ignore_index=True)


def _with_keys(frame: pd.DataFrame, spec: RunSpec) -> pd.DataFrame:
    for position, (key, value) in enumerate(zip(KEYS, (spec.env.env_id, spec.variant.name, spec.seed), strict=True)):
        frame.insert(position, key, value)
    return frame


def _evaluations(spec: RunSpec, runs_root: Path) -> pd.DataFrame:
    folder = spec.folder(runs_root)
    frame = pd.read_csv(folder / "eval.csv")
    frame["train_return"] = training_return_at(folder, frame["timesteps"].to_numpy(dtype=float))
    return _with_keys(frame, spec)


def _transfers(spec: RunSpec, runs_root: Path) -> pd.DataFrame:
    path = spec.folder(runs_root) / TRANSFER_FILE
    if not spec.env.transfer_envs or not path.exists():
        return pd.DataFrame()
    return _with_keys(pd.read_csv(path).rename(columns={"env_id": "level_env_id"}), spec)


def _config(spec: RunSpec, runs_root: Path) -> pd.DataFrame:
    folder = spec.folder(runs_root)
    config = json.loads((folder / "config.json").read_text())
    config.update(env_id=spec.env.env_id, variant=spec.variant.name, seed=spec.seed)
    config["done"] = json.loads((folder / DONE_FILE).read_text())
    return pd.DataFrame([{key: config.pop(key) for key in KEYS} | config])
