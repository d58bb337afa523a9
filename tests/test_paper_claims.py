"""scripts/paper_claims.py: the verdicts of the paper's claims 1 and 4 from a hand-made suite summary."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from paper_claims import main, ordered

VARIANTS = ("metarim_ppo", "rim_ppo", "ppo_lstm")


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
        == "not reproduced (ppo_lstm > rim_ppo > metarim_ppo)"
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
            summary_row("solved", "metarim_ppo", 3, 10, 0.9, 3),
            summary_row("solved", "rim_ppo", 3, 20, 0.5, 3),
            summary_row("solved", "metalstm_ppo", 3, 15, 0.7, 3),
            summary_row("solved", "ppo_lstm", 3, 30, 0.2, 3),
            summary_row("hard", "metarim_ppo", 3, 100, 0.1, 0),
            summary_row("hard", "rim_ppo", 3, 100, 0.1, 0),
            summary_row("hard", "ppo_lstm", 3, 100, 0.1, 0),
            summary_row("hard", "metalstm_ppo", 1, 100, 0.1, 0),
        ]
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    text = main(["--summary", str(tmp_path / "summary.csv")]).read_text()
    claim_1, claim_4 = text.split("## Claim 4")
    assert "| solved | metarim_ppo | 3 | 10 [10, 10] | 10 [10, 10] | holds | holds |" in claim_1
    assert "not testable (none reached the threshold)" in claim_1
    assert "| solved | metarim_ppo | 3 | 0.900 [0.900, 0.900] | 0.900 [0.900, 0.900] | holds | holds |" in claim_4
    assert "too early (seeds: metarim_ppo 3, metalstm_ppo 1, ppo_lstm 3)" in claim_4
