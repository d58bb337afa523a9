"""The package's layout: moved names stay importable from their old homes; the core needs none of the extras."""

import subprocess
import sys
import warnings

import pytest

import sb3_metarim


def test_moved_names_are_importable_from_their_old_homes():
    from sb3_metarim import envs, meta_rim_ppo, plots, rim, torch_layers, tuning, variants, zoo
    from sb3_metarim.envs import meta
    from sb3_metarim.envs import minigrid as minigrid_envs

    assert zoo.RIMPPO is variants.RIMPPO is sb3_metarim.RIMPPO
    assert zoo.MetaLSTMPPO is variants.MetaLSTMPPO is sb3_metarim.MetaLSTMPPO
    assert plots.write_study_report is tuning.write_study_report
    with pytest.warns(DeprecationWarning, match="sb3_metarim.zoo"):
        assert tuning.make_objective is zoo.make_objective
    assert meta_rim_ppo.ModuleActivity is rim.ModuleActivity
    for name in ("MiniGridFeaturesExtractor", "GridEncoder", "MissionEncoder", "PAD_ID", "IMAGE_KEY", "MISSION_KEY"):
        assert getattr(minigrid_envs, name) is getattr(torch_layers, name), name
    assert minigrid_envs.make_meta_env is envs.make_meta_env is meta.make_meta_env is sb3_metarim.make_meta_env
    assert envs.MiniGridFeaturesExtractor is sb3_metarim.MiniGridFeaturesExtractor is torch_layers.MiniGridFeaturesExtractor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from sb3_metarim.envs.minigrid import GridIdsWrapper, MissionTokenWrapper, require_key  # noqa: F401


CORE_ONLY = """
import sys
import sb3_metarim
from sb3_metarim import MetaLSTMPPO, RIMPPO

small = dict(n_steps=16, batch_size=16, n_epochs=1)
model = MetaLSTMPPO("MlpPolicy", "CartPole-v1", policy_kwargs=dict(num_units=2, unit_size=4), **small)
model.learn(32)
model.save(sys.argv[1])
loaded = MetaLSTMPPO.load(sys.argv[1], device="cpu")
assert type(loaded) is MetaLSTMPPO and loaded.num_timesteps == 32
RIMPPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, policy_kwargs=dict(num_units=2, top_k=1, unit_size=4))
extras = sorted(name for name in ("rl_zoo3", "optuna", "sb3_metarim.zoo", "sb3_metarim.tuning") if name in sys.modules)
assert not extras, extras
print("ok")
"""


def test_training_and_loading_the_variants_imports_neither_rl_zoo3_nor_optuna(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, str(tmp_path / "metalstm")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
