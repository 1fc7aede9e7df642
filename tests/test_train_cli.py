"""`persuasion-gym train`: SB3 callbacks (TensorBoard, evaluation, checkpoints) and --resume."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from testkit import REPO, rule_table

SCRIPT = Path(sys.executable).with_name("persuasion-gym")


def train(*args):
    return subprocess.run([str(SCRIPT), "train", "--featurizer", "hashed", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def test_train_ppo_with_callbacks_then_resume(tmp_path):
    train_table = rule_table("train", 300, tmp_path / "train.npz")
    test_table = rule_table("test", 40, tmp_path / "test.npz")
    out = tmp_path / "ppo"
    common = ["--env", "Persuasion-Table-v0", "--receiver", f"table:{train_table}", "--eval-receiver",
              f"table:{test_table}", "--algo", "ppo", "--eval-freq", "256", "--n-envs", "8", "--out", str(out)]
    first = train(*common, "--timesteps", "1024")
    assert first.returncode == 0, first.stderr
    meta = json.loads((out / "training.json").read_text())
    assert meta["timesteps"] == 1024 and meta["resumed_from"] is None
    assert (out / "model.zip").is_file() and (out / "best" / "best_model.zip").is_file()
    checkpoints = sorted(out.glob("checkpoints/ppo_*_steps.zip"))
    assert checkpoints, "checkpoints are written"
    evaluations = np.load(out / "eval" / "evaluations.npz")
    assert len(evaluations["timesteps"]) >= 3
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))
    second = train(*common, "--timesteps", "2048", "--resume")
    assert second.returncode == 0, second.stderr
    meta = json.loads((out / "training.json").read_text())
    assert meta["timesteps"] == 2048 and meta["resumed_from"].endswith("_1024_steps.zip")


def test_train_a_bandit_and_bad_algorithms(tmp_path):
    table = rule_table("train", 200, tmp_path / "train.npz")
    done = train("--env", "Persuasion-Table-v0", "--receiver", f"table:{table}", "--algo", "ucb",
                 "--timesteps", "512", "--out", str(tmp_path / "ucb"))
    assert done.returncode == 0, done.stderr
    saved = np.load(tmp_path / "ucb" / "policy.npz")
    assert saved["counts"].sum() == 512
    bad = train("--env", "Persuasion-Table-v0", "--receiver", f"table:{table}", "--algo", "sac",
                "--timesteps", "10", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "cannot train 'sac'" in bad.stderr and "Traceback" not in bad.stderr
