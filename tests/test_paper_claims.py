"""sb3_metarim.benchmark.claims and scripts/paper_claims.py: the verdicts of the paper's four claims from hand-made
suite summaries."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from sb3_metarim.benchmark.claims import ordered, transfer_verdict

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("metarim_ppo_paper", "rim_ppo_paper", "ppo_lstm")


def paper_claims(*argv: str) -> str:
    """Run ``python scripts/paper_claims.py *argv`` as a user does; :return: the markdown it wrote."""
    result = subprocess.run(
        [sys.executable, "scripts/paper_claims.py", *argv], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = result.stdout.splitlines()[0].removeprefix("wrote ")
    assert result.stdout.splitlines()[-1].startswith("python scripts/paper_claims.py --summary")
    return Path(written).read_text()


def rows(values: list[tuple[float, float, float]], metric: str = "frames_to_threshold") -> pd.DataFrame:
    """One env's rows: ``(point, low, high)`` per variant of :data:`VARIANTS`."""
    return pd.DataFrame([{metric: p, f"{metric}_low": lo, f"{metric}_high": hi} for p, lo, hi in values], index=list(VARIANTS))


def test_order_verdicts_read_the_points_then_the_cis():
    frames = "frames_to_threshold"
    assert ordered(rows([(10, 5, 15), (30, 20, 40), (60, 50, 70)]), frames, VARIANTS, lower_is_better=True) == "holds"
    assert ordered(rows([(10, 5, 25), (30, 20, 40), (60, 50, 70)]), frames, VARIANTS, True) == "consistent"
    assert ordered(rows([(50, 40, 60)] * 3), frames, VARIANTS, True) == "tied"
    assert (
        ordered(rows([(60, 50, 70), (30, 20, 40), (10, 5, 15)]), frames, VARIANTS, True)
        == "not reproduced (ppo_lstm > rim_ppo_paper > metarim_ppo_paper)"
    )
    # Larger is better (AUC): the same values the other way round.
    auc = rows([(0.9, 0.8, 1.0), (0.5, 0.4, 0.6), (0.1, 0.0, 0.2)], "auc")
    assert ordered(auc, "auc", VARIANTS, lower_is_better=False) == "holds"


def summary_row(env_id: str, variant: str, runs: int, frames: float, auc: float, reached: int) -> dict:
    row = {"env_id": env_id, "variant": variant, "runs": runs}
    for prefix in ("", "train_"):
        row |= {f"{prefix}frames_to_threshold{end}": frames for end in ("", "_low", "_high")}
        row |= {f"{prefix}auc{end}": auc for end in ("", "_low", "_high")}
        row[f"{prefix}reached"] = reached
    return row


def test_the_script_writes_verdicts_and_waits_for_seeds(tmp_path):
    summary = pd.DataFrame(
        [
            summary_row("solved", "metarim_ppo_paper", 3, 10, 0.9, 3),
            summary_row("solved", "rim_ppo_paper", 3, 20, 0.5, 3),
            summary_row("solved", "metalstm_ppo", 3, 15, 0.7, 3),
            summary_row("solved", "ppo_lstm", 3, 30, 0.2, 3),
            summary_row("hard", "metarim_ppo_paper", 3, 100, 0.1, 0),
            summary_row("hard", "rim_ppo_paper", 3, 100, 0.1, 0),
            summary_row("hard", "ppo_lstm", 3, 100, 0.1, 0),
            summary_row("hard", "metalstm_ppo", 1, 100, 0.1, 0),
        ]
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    text = paper_claims("--summary", str(tmp_path / "summary.csv"))
    claim_1, claim_4 = text.split("## Claim 4")
    assert "| solved | metarim_ppo_paper | 3 | 10 [10, 10] | 10 [10, 10] | holds | holds |" in claim_1
    assert "not testable (none reached the threshold)" in claim_1
    assert "| solved | metarim_ppo_paper | 3 | 0.900 [0.900, 0.900] | 0.900 [0.900, 0.900] | holds | holds |" in claim_4
    assert "too early (seeds: metarim_ppo_paper 3, metalstm_ppo 1, ppo_lstm 3)" in claim_4


def transfer_rows(meta: dict[str, tuple[float, float, float]], lstm: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """``transfer.csv`` rows of one training env: ``(point, low, high)`` per level, used for return and success."""
    records = [
        {"env_id": "easy-env", "variant": variant, "level": level, "level_env_id": f"{level}-env", "runs": 3}
        | {
            f"{metric}{end}": value
            for metric in ("return", "success")
            for end, value in zip(("", "_low", "_high"), values, strict=True)
        }
        for variant, levels in (("metarim_ppo_paper", meta), ("ppo_lstm", lstm))
        for level, values in levels.items()
    ]
    return pd.DataFrame(records)


def test_transfer_verdicts():
    lstm = {"easy": (0.9, 0.85, 0.95), "medium": (0.4, 0.35, 0.45), "difficult": (0.1, 0.05, 0.15)}
    separate = {"easy": (0.9, 0.85, 0.95), "medium": (0.7, 0.6, 0.8), "difficult": (0.4, 0.3, 0.5)}
    overlapping = separate | {"medium": (0.5, 0.42, 0.6)}
    worse_on_medium = separate | {"medium": (0.3, 0.2, 0.4)}
    # Better on both harder levels, but a larger drop from easy to difficult than the LSTM's.
    drops_more = {"easy": (1.0, 0.95, 1.0), "medium": (0.7, 0.6, 0.8), "difficult": (0.15, 0.14, 0.16)}

    def verdict(meta: dict) -> str:
        return transfer_verdict(transfer_rows(meta, lstm).set_index(["variant", "level"]))

    assert verdict(separate) == "holds"
    assert verdict(overlapping) == "consistent"
    assert verdict(worse_on_medium) == "not reproduced (the meta agent not better: return on medium, success on medium)"
    assert verdict(drops_more) == "not reproduced (the meta agent not better: drop from easy to difficult)"


def test_the_script_reads_transfer_and_curriculum(tmp_path):
    paper = pd.DataFrame(
        [summary_row("env", variant, 3, 10, 0.5, 3) for variant in ("metarim_ppo_paper", "rim_ppo_paper", "ppo_lstm")]
    )
    paper.to_csv(tmp_path / "summary.csv", index=False)
    level = {"easy": (0.9, 0.85, 0.95), "medium": (0.5, 0.4, 0.6), "difficult": (0.3, 0.2, 0.4)}
    transfer_rows(level, level).to_csv(tmp_path / "transfer.csv", index=False)
    curriculum = pd.DataFrame(
        [
            summary_row("BabyAI-PickupLoc-v0", "metarim_ppo_paper_from_gotolocal", 3, 20, 0.6, 3),
            summary_row("BabyAI-PickupLoc-v0", "ppo_lstm_from_gotolocal", 3, 40, 0.4, 3),
            summary_row("BabyAI-PickupLoc-v0", "metarim_ppo_paper", 2, 60, 0.3, 1),  # scratch runs do not hold the verdict
        ]
    )
    curriculum.to_csv(tmp_path / "curriculum.csv", index=False)
    text = paper_claims("--summary", str(tmp_path / "summary.csv"), "--curriculum", str(tmp_path / "curriculum.csv"))
    claim_2 = text.split("## Claim 2")[1].split("## Claim 3")[0]
    claim_3 = text.split("## Claim 3")[1].split("## Claim 4")[0]
    assert (
        "| easy-env | easy (easy-env) | metarim_ppo_paper | 3 | 0.900 [0.850, 0.950] | 0.900 [0.850, 0.950] | not reproduced"
        in claim_2
    )
    assert "| BabyAI-PickupLoc-v0 | metarim_ppo_paper_from_gotolocal | 3 | 0.600 [0.600, 0.600] |" in claim_3
    assert claim_3.count("| holds | holds |") == 1
    assert "| BabyAI-PickupLoc-v0 | metarim_ppo_paper | 2 |" in claim_3

    missing = paper_claims("--summary", str(tmp_path / "summary.csv"), "--curriculum", str(tmp_path / "none.csv"))
    assert "Not run yet" in missing
