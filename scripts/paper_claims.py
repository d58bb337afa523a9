"""
The verdicts of the paper's four claims, from the aggregates of the `paper` suite (``benchmarks/paper/summary.csv``
and ``transfer.csv``) and of the `paper_curriculum` suite (``benchmarks/paper_curriculum/summary.csv``), by the rules
of :mod:`sb3_metarim.benchmark.claims` (and docs/results/paper.md), written as markdown tables to
``benchmarks/paper/claims.md``.

.. code-block:: bash

    python -m sb3_metarim.benchmark aggregate paper && python -m sb3_metarim.benchmark aggregate paper_curriculum
    python scripts/paper_claims.py
"""

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from sb3_metarim.benchmark.claims import DEFAULT_MIN_SEEDS, claim_1, claim_2, claim_3, claim_4

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
parser.add_argument("--min-seeds", type=int, default=DEFAULT_MIN_SEEDS, help="finished seeds a verdict needs (default 3)")
args = parser.parse_args()
command = " ".join(["python scripts/paper_claims.py", *map(shlex.quote, sys.argv[1:])])

summary = pd.read_csv(args.summary)
transfer = args.transfer or args.summary.parent / "transfer.csv"
claim_2_lines = ["No transfer results yet (`" + str(transfer) + "`)."]
if transfer.exists():
    claim_2_lines = claim_2(pd.read_csv(transfer), args.min_seeds)
claim_3_lines = ["Not run yet (`" + str(args.curriculum) + "`)."]
if args.curriculum.exists():
    claim_3_lines = claim_3(pd.read_csv(args.curriculum), args.min_seeds)

lines = [
    "# The paper's four claims from the `paper` and `paper_curriculum` suites",
    "",
    f"Computed from `{args.summary}`, `{transfer}` and `{args.curriculum}` by `{command}`; rules in "
    "sb3_metarim.benchmark.claims and docs/results/paper.md. Mean frames to threshold with 95% bootstrap CIs (a run that "
    "never reached it counts as one evaluation interval after its budget); IQM normalized AUC, IQM return and success "
    "with 95% CIs.",
    "",
    "## Claim 1: sample efficiency (frames to threshold: metarim_ppo_paper < rim_ppo_paper < ppo_lstm; '>' below: faster)",
    "",
    *claim_1(summary, args.min_seeds),
    "",
    "## Claim 2: zero-shot transfer (trained on easy; metarim_ppo_paper above ppo_lstm on the harder levels)",
    "",
    *claim_2_lines,
    "",
    "## Claim 3: curriculum (fine-tuned on PickupLoc from GoToLocal; AUC: metarim_ppo_paper above ppo_lstm)",
    "",
    *claim_3_lines,
    "",
    "## Claim 4: ablation (AUC: metarim_ppo_paper > metalstm_ppo > ppo_lstm)",
    "",
    *claim_4(summary, args.min_seeds),
    "",
]
out = args.out or args.summary.parent / "claims.md"
out.write_text("\n".join(lines))
print(f"wrote {out}")
print(command)
