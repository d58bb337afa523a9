"""The package's layout: the public names, no module-level ``__getattr__``, and the core needs none of the extras."""

import importlib
import pkgutil
import subprocess
import sys

import sb3_metarim


def test_public_names_and_entry_points():
    from sb3_metarim import RIMPPO, MetaLSTMPPO, MetaRIMPPO, MetODSPPO, envs
    from sb3_metarim.benchmark.cli import main as benchmark_main
    from sb3_metarim.zoo.enjoy import main as enjoy_main
    from sb3_metarim.zoo.train import main as train_main

    assert all(issubclass(algo, MetaRIMPPO) for algo in (RIMPPO, MetaLSTMPPO, MetODSPPO))
    assert envs.make_meta_env is sb3_metarim.make_meta_env
    assert callable(benchmark_main) and callable(enjoy_main) and callable(train_main)
    result = subprocess.run([sys.executable, "-m", "sb3_metarim.benchmark", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "run" in result.stdout, result.stderr[-2000:]


def test_no_module_keeps_names_through_a_module_getattr():
    modules = pkgutil.walk_packages(sb3_metarim.__path__, "sb3_metarim.")
    names = [info.name for info in modules if not info.name.endswith("__main__")]
    assert "sb3_metarim.cores.registry" in names and "sb3_metarim.meta_rim_ppo.policies" in names
    with_getattr = [name for name in names if "__getattr__" in vars(importlib.import_module(name))]
    assert not with_getattr, with_getattr


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
extras = sorted(name for name in ("rl_zoo3", "optuna", "sb3_metarim.zoo") if name in sys.modules)
assert not extras, extras
print("ok")
"""


def test_training_and_loading_the_variants_imports_neither_rl_zoo3_nor_optuna(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, str(tmp_path / "metalstm")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
