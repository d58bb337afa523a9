"""
The wheel as a user gets it: built from the sources, installed in a fresh virtual environment outside the
checkout (no system site-packages), without extras (MetaRIMPPO trains) and then with ``[zoo]`` (the console
script trains with the default config shipped in the package, without ``-conf``). About a minute with local
wheels; pip reaches the package index for what is not cached.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "constraints.txt", "sb3_metarim", "zoo_configs")
TIMEOUT = 900

BARE = """
import sys
import sb3_metarim
from sb3_metarim import MetaRIMPPO

assert sb3_metarim.__file__.startswith(sys.prefix), sb3_metarim.__file__
model = MetaRIMPPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, n_epochs=2, seed=0)
model.learn(256)
assert model.num_timesteps == 256
extras = sorted(name for name in ("rl_zoo3", "optuna", "minigrid", "matplotlib", "pandas") if name in sys.modules)
assert not extras, extras
print("bare wheel ok")
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}:\n{output}")
    return result


@pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs the build package (pip install build)")
def test_wheel_installs_and_trains_outside_the_checkout(tmp_path):
    start = time.monotonic()
    # Build from a copy of the sources, so that the build leaves nothing in the checkout.
    sources = tmp_path / "src"
    sources.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, sources / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, sources / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(sources)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("sb3_metarim-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python, pip = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    constraints = ["-c", str(REPO / "constraints.txt")]
    work = tmp_path / "work"  # outside the checkout: nothing there to import sb3_metarim from
    work.mkdir()

    run([*pip, *constraints, str(wheel)], work, env)
    assert "bare wheel ok" in run([str(python), "-c", BARE], work, env).stdout

    run([*pip, *constraints, f"{wheel}[zoo]"], work, env)
    small = ["-params", "n_envs:2", "n_steps:64", "--eval-freq", "-1", "--num-threads", "1"]
    command = [str(venv / "bin" / "sb3-metarim-train"), "--algo", "metarim_ppo", "--env", "CartPole-v1", "-n", "256", *small]
    result = run(command, work, env)
    config = venv.glob("lib/python*/site-packages/sb3_metarim/zoo_configs/metarim_ppo.yml")
    assert f"Loading hyperparameters from: {next(config)}" in result.stdout, result.stdout[-3000:]
    assert (work / "logs" / "metarim_ppo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()
    print(f"wheel built, installed and run in {time.monotonic() - start:.0f} s")
