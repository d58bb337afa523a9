"""
Quick start: train MetaRIMPPO on a task that needs memory, save it, evaluate it, plot its learning curve.

CueMemory shows one of three cues at the first step and asks for it five steps later: a memoryless
agent succeeds a third of the time. Run: ``python scripts/quickstart.py [--timesteps N] [--out DIR]``.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import load_results
from stable_baselines3.common.results_plotter import X_TIMESTEPS, ts2xy, window_func

from sb3_metarim import MetaRIMPPO

parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
parser.add_argument("--timesteps", type=int, default=30_000)
parser.add_argument("--n-envs", type=int, default=8)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
args = parser.parse_args()
th.set_num_threads(1)  # small networks: one thread is fastest and leaves the other core free
env_kwargs = dict(n_cues=3, delay=4)

# 1. Environments, each wrapped in a Monitor that logs episode returns to CSV.
env = make_vec_env(
    "sb3_metarim/CueMemory-v0",
    n_envs=args.n_envs,
    seed=args.seed,
    env_kwargs=env_kwargs,
    monitor_dir=str(args.out / "monitor"),
)

# 2. Train with SB3's usual arguments plus the fast/slow ones.
model = MetaRIMPPO(
    "MlpPolicy",
    env,
    learning_rate=1e-3,
    n_steps=64,
    batch_size=128,
    n_epochs=4,
    seed=args.seed,
    verbose=1,
    tensorboard_log=str(args.out / "tensorboard"),
)
model.learn(args.timesteps, progress_bar=True)
model.save(args.out / "metarim_cuememory")

# 3. Evaluate the deterministic policy on fresh episodes.
eval_env = make_vec_env("sb3_metarim/CueMemory-v0", n_envs=1, seed=args.seed + 1000, env_kwargs=env_kwargs)
success, _ = evaluate_policy(model, eval_env, n_eval_episodes=200, deterministic=True)

# 4. Learning curve from the Monitor logs (reward 1 = success).
x, y = ts2xy(load_results(str(args.out / "monitor")), X_TIMESTEPS)
x_smooth, y_smooth = window_func(x, y, 200, lambda values, axis: values.mean(axis=axis))
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(x_smooth, y_smooth, label="MetaRIMPPO (mean of 200 episodes)")
ax.axhline(1 / env_kwargs["n_cues"], color="grey", linestyle="--", label="chance (no memory)")
ax.set(xlabel="environment steps", ylabel="success rate", title="CueMemory: recall a cue after 5 steps", ylim=(0, 1.05))
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(args.out / "learning_curve.png", dpi=120)

print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
print(f"evaluation success rate: {success:.3f} over 200 episodes (chance {1 / env_kwargs['n_cues']:.3f})")
print(
    f"model: {args.out / 'metarim_cuememory.zip'}  curve: {args.out / 'learning_curve.png'}  "
    f"tensorboard: {args.out / 'tensorboard'}"
)
