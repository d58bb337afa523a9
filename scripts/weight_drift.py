"""
How far training moved each part of a harness run's policy from its initial weights: per parameter group (the
input attention, the communication attention, the modules' cells, the extractor, the heads, ...), the relative
change ``||trained - initial|| / ||initial||`` over the group's weights. The initial weights are rebuilt exactly:
the harness builds a run's model from its suite entry and seed, so the same call gives the same initial policy.

Why: with fast/slow training, is the slow set (a RIM's attention) learning at all? Ablation round 12 (README, memory
suite section) found it moves about 1% in 60k steps with the defaults, against 20% trained on one timescale.

.. code-block:: bash

    python scripts/weight_drift.py memory sb3_metarim/TMaze-v0 metarim_ppo rim_ppo --seeds 0 1 2
    # -> a markdown table on stdout; --csv FILE writes the per-run rows
"""

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch as th

from sb3_metarim.benchmark.runner import ALGORITHMS, DONE_FILE, build_model, make_env
from sb3_metarim.benchmark.spec import RunSpec, load_suite

# The groups, first match wins, by parameter name; anything else is "other".
GROUPS = (
    "input_attention",
    "communication_attention",
    "cell",
    "dense",
    "features_extractor",
    "mlp_extractor",
    "action_net",
    "value_net",
)


def group_of(name: str) -> str:
    return next((group for group in GROUPS if group in name), "other")


def drift(initial: dict[str, th.Tensor], trained: dict[str, th.Tensor]) -> dict[str, float]:
    """:return: per group, ``||trained - initial|| / ||initial||`` over its floating-point tensors."""
    change: dict[str, float] = defaultdict(float)  # squared norms, summed per group
    norm: dict[str, float] = defaultdict(float)
    for name, start in initial.items():
        if start.is_floating_point():
            change[group_of(name)] += float((trained[name] - start).square().sum())
            norm[group_of(name)] += float(start.square().sum())
    return {group: (change[group] / norm[group]) ** 0.5 if norm[group] > 0 else float("nan") for group in norm}


def run_drift(spec: RunSpec, root: Path) -> dict[str, float]:
    """:return: the run's drift per group (its ``model.zip`` against the model the harness built at the start)."""
    algo_class = ALGORITHMS[spec.variant.algo]
    env = make_env(spec, train=True)
    initial = build_model(spec, algo_class, env, "cpu", 0).policy.state_dict()
    env.close()
    trained = algo_class.load(spec.folder(root) / "model.zip", device="cpu").policy.state_dict()
    return drift(initial, trained)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("suite", help="a suite yaml file or a shipped suite's name")
    parser.add_argument("env", help="the env id")
    parser.add_argument("variants", nargs="+", help="variants of the suite")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the suite's)")
    parser.add_argument("--root", type=Path, default=Path("benchmarks"), help="the harness's --out (default benchmarks)")
    parser.add_argument("--csv", type=Path, help="also write the per-run rows here")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite)
    suite.import_modules()
    specs = [
        spec for spec in suite.runs([args.env], args.variants, args.seeds) if (spec.folder(args.root) / DONE_FILE).exists()
    ]
    if init_runs := [spec.describe() for spec in specs if spec.variant.init_from]:
        raise SystemExit(f"fine-tuned runs start from another model, not from their seed: {init_runs}")
    if not specs:
        raise SystemExit(f"no finished run of {args.variants} on {args.env} in suite {args.suite!r} under {args.root}")
    rows = pd.DataFrame([{"variant": spec.variant.name, "seed": spec.seed, **run_drift(spec, args.root)} for spec in specs])
    if args.csv:
        rows.to_csv(args.csv, index=False)
    table = rows.drop(columns="seed").groupby("variant", sort=False).mean()
    print(f"relative change from the initial weights, mean over seeds {sorted(set(rows['seed']))} ({args.env}):\n")
    print("| variant | " + " | ".join(table.columns) + " |")
    print("|---|" + "---|" * len(table.columns))
    for variant, values in table.iterrows():
        print(f"| {variant} | " + " | ".join(f"{value:.3f}" for value in values) + " |")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
