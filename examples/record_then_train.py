"""Record once, train many: record train and test tables from a Receiver, train PPO on the
train table at memory speed with the native vector env, and score it exactly on the test table.

    python examples/record_then_train.py [--receiver SPEC] [--train-items 40] [--test-items 20] [--timesteps 20000]
"""

import argparse
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import PPO

import persuasion_gym  # noqa: F401
from persuasion_agents.sb3_policies import DEFAULTS
from persuasion_gym.envs.sb3 import as_sb3_vec_env
from persuasion_gym.receivers import make_receiver
from persuasion_gym.tables import baseline_values, load_table, policy_value, record
from persuasion_gym.tasks import GSM8KTask

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: %(default)s)")
parser.add_argument("--train-items", type=int, default=40,
                    help="GSM8K training questions to record (default: %(default)s)")
parser.add_argument("--test-items", type=int, default=20, help="GSM8K test questions to record (default: %(default)s)")
parser.add_argument("--timesteps", type=int, default=20_000, help="PPO training episodes (default: %(default)s)")
parser.add_argument("--out", default="runs/record-then-train",
                    help="directory for the two tables (default: %(default)s)")
args = parser.parse_args()

task, receiver, out = GSM8KTask(), make_receiver(args.receiver), Path(args.out)
for split, n in (("train", args.train_items), ("test", args.test_items)):
    record(task, receiver, task.load(split, max_items=n), list(task.default_signals), out=out / f"{split}.npz")

venv = as_sb3_vec_env(gym.make_vec("Persuasion-Table-v0", num_envs=32, table=str(out / "train.npz"), featurizer="hashed"))
model = PPO("MlpPolicy", venv, seed=0, **DEFAULTS["ppo"]).learn(args.timesteps)

test = gym.make("Persuasion-Table-v0", table=str(out / "test.npz"), featurizer="hashed")
actions = model.predict(test.unwrapped.features, deterministic=True)[0]
table = load_table(out / "test.npz")
values = baseline_values(table)
print(f"PPO on the test table: {policy_value(table, actions):.3f} (exact)")
for name in ("no_signal", "uniform_random", "best_fixed", "oracle"):
    print(f"{name:>15}: {values[name]:.3f}")
