"""`bench` reruns in the same --out: a saved run is reused only under the settings it ran under
(issue 18), and the policy names are checked before any run starts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from testkit import synthetic_table

from persuasion_agents.benchmark import Setting, run_benchmark
from persuasion_agents.environments import make_env
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
from persuasion_agents.saved_runs import run_key
from persuasion_gym.cli.main import main
from persuasion_gym.errors import ConfigError
from persuasion_gym.tasks import GSM8KTask


def small_table(path: Path, split: str, n: int, n_signals: int = 4, receiver: str = "synthetic") -> Path:
    """A table of ``n`` GSM8K items where each cell is right at random (30%)."""
    items = GSM8KTask().load(split, max_items=n)
    scores = (np.random.default_rng(n).random((n, n_signals, 1)) < 0.3).astype(np.float32)
    table = synthetic_table(items, ["", *(f"hint {k}" for k in range(1, n_signals))], scores)
    table.meta["receiver"] = {"kind": receiver}
    table.save(path)
    return path


@pytest.fixture
def setting(tmp_path: Path) -> Setting:
    train, test = small_table(tmp_path / "train.npz", "train", 60), small_table(tmp_path / "test.npz", "test", 30)
    return Setting("Persuasion-Table-v0", f"table:{test}", train_receiver=f"table:{train}")


def bench(setting: Setting, out: Path, policies: list[str], timesteps: int = 200, seed: int = 0,
          featurizer: str = "hashed") -> list[dict]:
    return run_benchmark([setting], policies, out, timesteps=timesteps, seed=seed, featurizer=featurizer,
                         progress=False)


def saved(out: Path, policy: str) -> dict:
    (path,) = (out / "runs").glob(f"*__{policy}.json")
    return json.loads(path.read_text())


def mark(out: Path, *policies: str) -> None:
    """Tag saved runs: a reused run keeps the tag, a recomputed one is written afresh."""
    for policy in policies:
        (path,) = (out / "runs").glob(f"*__{policy}.json")
        path.write_text(json.dumps({**json.loads(path.read_text()), "marker": True}))


def reused(out: Path, policy: str) -> bool:
    return "marker" in saved(out, policy)


def test_changed_timesteps_recompute_the_trained_run_and_not_the_untrained_ones(setting, tmp_path, caplog):
    out = tmp_path / "bench"
    bench(setting, out, ["none", "best-fixed", "ucb"], timesteps=200)
    assert saved(out, "ucb")["run_key"]["timesteps"] == 200
    assert "timesteps" not in saved(out, "none")["run_key"] and "timesteps" not in saved(out, "best-fixed")["run_key"]
    short = len(saved(out, "ucb")["curve"])
    mark(out, "none", "best-fixed", "ucb")
    with caplog.at_level(logging.WARNING, logger="persuasion_agents.saved_runs"):
        bench(setting, out, ["none", "best-fixed", "ucb"], timesteps=800)
    assert not reused(out, "ucb") and saved(out, "ucb")["run_key"]["timesteps"] == 800
    assert len(saved(out, "ucb")["curve"]) > short
    assert reused(out, "none") and reused(out, "best-fixed")
    (message,) = caplog.messages
    assert str(out / "runs") in message and "__ucb.json" in message
    assert "saved under timesteps=200; now timesteps=800: recomputing" in message


def test_changed_seed_or_featurizer_recompute_and_unchanged_settings_reuse(setting, tmp_path, caplog):
    out = tmp_path / "bench"
    policies = ["none", "random", "ucb", "linucb"]
    bench(setting, out, policies)
    mark(out, *policies)
    bench(setting, out, policies)  # the same settings: every run is read back
    assert all(reused(out, p) for p in policies)
    with caplog.at_level(logging.WARNING, logger="persuasion_agents.saved_runs"):
        bench(setting, out, policies, seed=1)
    assert reused(out, "none")  # its actions do not depend on the seed
    assert not any(reused(out, p) for p in ("random", "ucb", "linucb"))
    assert all(saved(out, p)["run_key"]["seed"] == 1 for p in ("random", "ucb", "linucb"))
    assert any("saved under seed=0; now seed=1: recomputing" in m for m in caplog.messages)
    mark(out, *policies)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="persuasion_agents.saved_runs"):
        bench(setting, out, policies, seed=1, featurizer="minilm")
    assert not reused(out, "linucb") and not reused(out, "ucb")  # they train on the features
    assert saved(out, "linucb")["provenance"]["featurizer"] == "all-MiniLM-L6-v2-normalized"
    assert reused(out, "none") and reused(out, "random")
    assert any("featurizer=hashed-ngram-v1-d1024-n2; now featurizer=all-MiniLM-L6-v2-normalized" in m
               for m in caplog.messages)


def test_a_changed_receiver_or_training_items_recompute(setting, tmp_path):
    out = tmp_path / "bench"
    bench(setting, out, ["none", "best-fixed"])
    mark(out, "none", "best-fixed")
    # The same table path, recorded again against another Receiver: no run of the old one is served.
    small_table(Path(setting.receiver.removeprefix("table:")), "test", 30, receiver="another")
    bench(setting, out, ["none", "best-fixed"])
    assert not reused(out, "none") and saved(out, "none")["run_key"]["eval_env"]["receiver"] == {"kind": "another"}
    mark(out, "none", "best-fixed")
    fewer = Setting(setting.env_id, setting.receiver, train_receiver=setting.train_receiver, train_items=20)
    bench(fewer, out, ["none", "best-fixed"])
    assert reused(out, "none") and not reused(out, "best-fixed")
    assert saved(out, "best-fixed")["run_key"]["train_items"] == 20


def test_a_run_saved_without_a_key_is_recomputed(setting, tmp_path, caplog):
    out = tmp_path / "bench"
    bench(setting, out, ["none", "ucb"])
    for policy in ("none", "ucb"):  # as versions before run keys wrote them
        (path,) = (out / "runs").glob(f"*__{policy}.json")
        run = json.loads(path.read_text())
        del run["run_key"]
        path.write_text(json.dumps({**run, "marker": True}))
    with caplog.at_level(logging.WARNING, logger="persuasion_agents.saved_runs"):
        bench(setting, out, ["none", "ucb"])
    assert not reused(out, "none") and not reused(out, "ucb")
    assert saved(out, "ucb")["run_key"]["timesteps"] == 200
    assert len(caplog.messages) == 2
    assert all("saved by an older version" in m and "recomputing" in m for m in caplog.messages)


def test_a_fixed_signal_beyond_the_table_fails_before_any_run(tmp_path):
    train = small_table(tmp_path / "train.npz", "train", 20, n_signals=10)
    test = small_table(tmp_path / "test.npz", "test", 10, n_signals=10)
    setting = Setting("Persuasion-Table-v0", f"table:{test}", train_receiver=f"table:{train}")
    out = tmp_path / "bench"
    with pytest.raises(ConfigError, match=r"--policies: fixed-12 .* 10 signals: use fixed-0\.\.fixed-9"):
        bench(setting, out, ["none", "fixed-12"])
    with pytest.raises(ConfigError, match=r"--policies: unknown policy 'nope'.*fixed-0\.\.fixed-9"):
        bench(setting, out, ["none", "nope"])
    assert not list(out.glob("runs/*.json"))
    assert [r["policy"] for r in bench(setting, out, ["fixed-9"])] == ["fixed-9"]


def test_policy_names_are_stripped(setting, tmp_path, capsys):
    rows = bench(setting, tmp_path / "a", [" none ", " ucb", ""])
    assert [r["policy"] for r in rows] == ["none", "ucb"]
    out = tmp_path / "cli"
    assert main(["bench", "--env", setting.env_id, "--receiver", setting.receiver, "--train-receiver",
                 str(setting.train_receiver), "--policies", "none, ucb", "--timesteps", "200",
                 "--featurizer", "hashed", "--out", str(out)]) == 0
    assert sorted(p.name.rsplit("__", 1)[1] for p in (out / "runs").glob("*.json")) == ["none.json", "ucb.json"]
    assert "| ucb |" in capsys.readouterr().out


def test_lm_advisor_options_are_in_the_key_and_its_output_folder_is_not(setting, tmp_path):
    env = make_env(setting.env_id, setting.receiver, setting.split, setting.n_items, "hashed")

    def key(**options):
        return run_key("lm-advisor", setting, env, 200, 0, options)

    untrained = key(advisor="embedded", training=AdvisorTraining(steps=2), out=str(tmp_path / "a"))
    assert untrained["options"] == {"advisor": "embedded", "training": {**AdvisorTraining(steps=2).__dict__}}
    assert untrained == key(advisor="embedded", training=AdvisorTraining(steps=2), out=str(tmp_path / "b"))
    assert untrained != key(advisor="embedded", training=AdvisorTraining(steps=3))
    assert untrained["train_receiver"] == setting.train_receiver and "timesteps" not in untrained
    trained = tmp_path / "advisor"  # a trained Advisor's directory: its training settings do not apply
    trained.mkdir()
    info = {"source": "embedded", "template": {}, "trained_on": {"receiver": {"kind": "alpha"}, "steps": 2}}
    (trained / "advisor.json").write_text(json.dumps(info))
    once = key(advisor=str(trained), training=AdvisorTraining(steps=2))
    assert once == key(advisor=str(trained), training=AdvisorTraining(steps=9)) and "train_receiver" not in once
    info["trained_on"]["steps"] = 4  # trained again into the same directory
    (trained / "advisor.json").write_text(json.dumps(info))
    assert key(advisor=str(trained)) != once
