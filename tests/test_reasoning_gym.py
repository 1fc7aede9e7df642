"""reasoning-gym's generators as persuasion envs: items from the seeded generator, rewards from
the dataset's own score_answer (partial credit kept), tables that record its config and re-score,
text actions, and errors that say the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import persuasion_gym
from persuasion_gym.errors import ConfigError, DataError
from persuasion_gym.receivers import make_receiver
from persuasion_gym.signals import REASONING_SIGNALS
from persuasion_gym.tables import load_table, record, rescore
from persuasion_gym.tasks import ReasoningGymTask, make_task
from persuasion_gym.tasks.reasoning_gym import extract_answer

from testkit import REPO, advice_of, question_of

rg = pytest.importorskip("reasoning_gym")  # the package imports it only when a task is used

ARITHMETIC = {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1}
# Datasets of different kinds: numeric arithmetic, a string algorithm with partial credit, yes/no
# logic, and a list scored from the entry's metadata.
KINDS = [("basic_arithmetic", ARITHMETIC), ("spell_backward", {}), ("syllogism", {}), ("word_sorting", {})]


def golds(task: ReasoningGymTask) -> dict[str, str]:
    """Each question of both splits -> its gold answer (metadata-scored datasets: the sorted words)."""
    gold = {}
    for split in ("train", "test"):
        for item in task.load(split).items:
            entry = task.entry(item)
            gold[item.text.strip()] = item.gold or ", ".join(entry["metadata"].get("sorted_words", []))
    return gold


def scripted(gold: dict[str, str]):
    """Right in a different form per signal, wrong, or partly right (a truncated answer)."""
    def reply(messages):
        answer, advice = gold[question_of(messages).strip()], advice_of(messages)
        if not advice:
            return f"Let me think about it.\nAnswer: {answer}"
        if "only the final answer" in advice:
            return answer
        if "step by step" in advice:
            return f"First I work it out.\n<answer>{answer}</answer>"
        if "check" in advice:
            return f"The answer is {answer[:-1] or 'x'}."  # one character short: partial credit at most
        return "I am not sure. Answer: 123456789"
    return reply


def fresh_entry(name: str, config: dict, item_id: str, seed: int = 0, size: int = 12) -> dict:
    """The entry straight from reasoning-gym, not through the task: what score_answer should see."""
    _, split, index = item_id.split("/")
    offset = 1_000_000_007 if split == "test" else 0
    return rg.create_dataset(name, size=size, seed=seed + offset, **config)[int(index)]


@pytest.mark.parametrize(("name", "config"), KINDS)
def test_rewards_are_the_datasets_own_scores(name, config, make_server):
    task = ReasoningGymTask(name, size=12, seed=0, **config)
    server = make_server(scripted(golds(task)))
    env = gym.make("Persuasion-ReasoningGym-v0", dataset=name, size=12, seed=0, **config,
                   receiver=f"openai:scripted@{server.url}", featurizer="hashed", max_items=6)
    reference = rg.create_dataset(name, size=12, seed=0, **config)
    assert list(env.unwrapped.signals) == list(REASONING_SIGNALS)
    rewards = []
    for index in range(6):
        for action in (0, 1, 2, 6):  # none, step by step, only the answer, check it
            env.reset(seed=index, options={"item_index": index})
            _, reward, terminated, _, info = env.step(action)
            entry = fresh_entry(name, config, info["item_id"])
            assert info["question"] == entry["question"] and terminated
            numeric = entry["answer"] is not None and _is_number(entry["answer"])
            expected = reference.score_answer(extract_answer(info["response"], numeric), entry)
            assert reward == pytest.approx(expected) and info["answer"] == extract_answer(info["response"], numeric)
            assert info["correct"] == (reward >= 1.0)
            rewards.append(reward)
    rewards = np.array(rewards).reshape(6, 4)
    assert (rewards[:, :3] == 1.0).all()  # the three right forms: "Answer: X", X alone, <answer>X</answer>
    if name == "spell_backward":  # partial credit is a float reward, not rounded to 0 or 1
        assert ((0 < rewards[:, 3]) & (rewards[:, 3] < 1)).any()


def _is_number(text: str) -> bool:
    from persuasion_gym.tasks import parse_number

    return parse_number(text) is not None


@pytest.mark.parametrize(("response", "numeric", "answer"), [
    ("2 + 3 = 5. Answer: 5", True, "5"),
    ("The answer is: 2 + 3 = 5", True, "5"),  # the result, not the first operand
    ("Answer:\n\n-7", True, "-7"),
    ("**Answer:** **12**.", True, "12"),
    ("<answer> 8 </answer> and then 9", True, "8"),
    ("I get \\boxed{-4} in the end", True, "-4"),
    ("3 * 4 = 12.0", True, "12"),  # no marker: the last number, written as the generators do
    ("first 3 then 4 then 10", True, "10"),
    ("x = 2/3", True, "2/3"),
    ("no number here", True, "no number here"),
    ("Let me see.\nYes, it follows.", False, "Yes, it follows"),
    ("The answer is `nus`.", False, "nus"),
    ("<answer>apple, banana</answer>", False, "apple, banana"),
    ("Answer: Yes\nThat is all", False, "Yes"),
    ("   ", False, None),
])
def test_answers_are_extracted_from_free_text(response, numeric, answer):
    assert extract_answer(response, numeric) == answer


def test_items_and_hash_reproduce_from_the_seed_and_change_with_it():
    first = ReasoningGymTask("basic_arithmetic", size=30, seed=0, **ARITHMETIC).load("train")
    again = ReasoningGymTask("basic_arithmetic", size=30, seed=0, config=ARITHMETIC).load("train")
    assert first.items == again.items and first.sha256 == again.sha256 and len(first) == 30
    assert [item.text for item in first.items] == [e["question"] for e in
                                                   rg.create_dataset("basic_arithmetic", size=30, seed=0, **ARITHMETIC)]
    other_seed = ReasoningGymTask("basic_arithmetic", size=30, seed=1, **ARITHMETIC).load("train")
    harder = ReasoningGymTask("basic_arithmetic", size=30, seed=0, **{**ARITHMETIC, "max_digits": 2}).load("train")
    assert len({first.sha256, other_seed.sha256, harder.sha256}) == 3 and harder.items != first.items
    # Same items, other settings: the hash covers the config (and size), not only the items.
    bigger = ReasoningGymTask("basic_arithmetic", size=31, seed=0, **ARITHMETIC).load("train", max_items=30)
    assert bigger.items == first.items and bigger.sha256 != first.sha256
    # The test split never asks a train question.
    task = ReasoningGymTask("basic_arithmetic", size=100, seed=0, min_terms=2, max_terms=2, max_digits=1)
    train, test = task.load("train"), task.load("test")
    assert not {i.text for i in train.items} & {i.text for i in test.items} and 0 < len(test) <= 100
    assert test.sha256 != train.sha256 and test.items[0].item_id.startswith("basic_arithmetic/test/")


def test_settings_name_the_generator_and_rebuild_the_task():
    task = ReasoningGymTask("basic_arithmetic", size=20, seed=3, **ARITHMETIC)
    settings = task.settings()
    assert settings["dataset"] == "basic_arithmetic" and settings["seed"] == 3 and settings["size"] == 20
    assert settings["reasoning_gym"] == __import__("importlib.metadata").metadata.version("reasoning-gym")
    assert settings["config"] == ARITHMETIC and settings["resolved_config"]["operators"] == ["+", "-", "*", "/"]
    rebuilt = ReasoningGymTask.from_settings(json.loads(json.dumps(settings)))
    assert rebuilt.load("test") == task.load("test")
    assert isinstance(make_task("reasoning_gym"), ReasoningGymTask)  # what a table's replay builds


def test_tables_record_replay_and_rescore(make_server, tmp_path, capsys):
    task = ReasoningGymTask("spell_backward", size=8, seed=0)
    server = make_server(scripted(golds(task)))
    receiver = make_receiver(f"openai:scripted@{server.url}")
    signals = [REASONING_SIGNALS[i] for i in (0, 2, 1, 6, 3)]  # right, right, right, partly right, wrong
    path = tmp_path / "spell.npz"
    recorded = record(task, receiver, task.load("test", max_items=4), signals, out=path, progress=False,
                      env_id="Persuasion-ReasoningGym-v0")
    table = load_table(path)
    assert table.task == "reasoning_gym" and table.meta["task_settings"] == json.loads(json.dumps(task.settings()))
    assert table.meta["dataset"]["name"] == "spell_backward" and table.meta["dataset"]["split"] == "test"
    assert (table.scores[:, :3] == 1).all() and ((0 < table.scores[:, 3]) & (table.scores[:, 3] < 1)).any()
    # Replayed without a Receiver (or reasoning-gym's generator) and the same rewards come back.
    env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", observation="text")
    for index in range(4):
        env.reset(seed=0, options={"item_index": index})
        _, reward, _, _, info = env.step(3)
        assert reward == pytest.approx(float(recorded.scores[index, 3, 0])) and info["question"] == task.load(
            "test").items[index].text
    # Re-scored from the recorded settings alone: the items are generated again, the scores agree.
    again = rescore(path)
    assert again.changed_scores == 0 and again.changed_answers == 0
    np.testing.assert_array_equal(again.table.scores, table.scores)
    from persuasion_gym.cli.main import main

    assert main(["rescore", str(path), "--out", str(tmp_path / "again.npz")]) == 0
    assert json.loads(capsys.readouterr().out)["changed_scores"] == 0
    # A table whose settings no longer make its items is refused, not scored against other items.
    other = dict(table.meta, task_settings={**table.meta["task_settings"], "seed": 5})
    load_table(path).__class__(**{**load_table(path).__dict__, "meta": other}).save(tmp_path / "other.npz")
    with pytest.raises(DataError, match="is not the question reasoning-gym"):
        rescore(tmp_path / "other.npz")


def test_text_actions_and_the_vector_env(make_server):
    task = ReasoningGymTask("basic_arithmetic", size=10, seed=0, **ARITHMETIC)
    server = make_server(scripted(golds(task)))
    env = gym.make("Persuasion-ReasoningGym-v0", size=10, seed=0, **ARITHMETIC,
                   receiver=f"openai:scripted@{server.url}", featurizer="hashed", action_type="text",
                   observation="text")
    obs, info = env.reset(seed=0, options={"item_index": 2})
    assert obs == info["question"] and obs in env.observation_space
    _, reward, _, _, info = env.step("Give only the final answer, with no explanation.")
    assert reward == 1.0 and info["response"] == info["gold"] and info["signal"].startswith("Give only")
    assert advice_of(server.requests[-1]["messages"]) == "Give only the final answer, with no explanation."
    env.reset(seed=1)
    _, reward, _, _, info = env.step("A hint of my own.")
    assert reward == extract_answer_score(info)
    # Both splits' characters are in the text space, so train and test envs share it.
    test_env = gym.make("Persuasion-ReasoningGym-v0", size=10, seed=0, **ARITHMETIC, split="test",
                        receiver=f"openai:scripted@{server.url}", featurizer="hashed", observation="text")
    assert test_env.observation_space == env.observation_space
    vector = gym.make_vec("Persuasion-ReasoningGym-v0", num_envs=3, size=10, seed=0, **ARITHMETIC,
                          receiver=f"openai:scripted@{server.url}", featurizer="hashed")
    vector.reset(seed=0)
    _, rewards, *_ = vector.step(np.array([0, 1, 2]))
    assert rewards.tolist() == [1.0, 1.0, 1.0]


def extract_answer_score(info) -> float:
    entry = fresh_entry("basic_arithmetic", ARITHMETIC, info["item_id"], size=10)
    return rg.create_dataset("basic_arithmetic", size=10, seed=0, **ARITHMETIC).score_answer(
        extract_answer(info["response"], True), entry)


def test_bad_names_and_settings_say_the_fix():
    with pytest.raises(ConfigError, match=r"unknown reasoning-gym dataset 'basic_arithmatic': did you mean "
                                          r"'basic_arithmetic'.*dataset_names\(\)"):
        gym.make("Persuasion-ReasoningGym-v0", dataset="basic_arithmatic", receiver="openai:m@http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match=r"basic_arithmetic has no setting 'max_term' \(did you mean 'max_terms'\?\)"
                                          r".*min_terms=2, max_terms=6"):
        ReasoningGymTask("basic_arithmetic", max_term=3).load("train")
    with pytest.raises(ConfigError, match=r"basic_arithmetic rejects the settings min_terms=4, max_terms=3: "
                                          r"max_terms must be >= min_terms"):
        ReasoningGymTask("basic_arithmetic", min_terms=4, max_terms=3).load("train")
    with pytest.raises(ConfigError, match="config holds 'seed': pass seed= to the task"):
        ReasoningGymTask("basic_arithmetic", config={"seed": 1})
    with pytest.raises(ConfigError, match="size=0: pass a positive number"):
        ReasoningGymTask("basic_arithmetic", size=0)
    with pytest.raises(ConfigError, match="items are generated, not read: drop data_path"):
        ReasoningGymTask().load("train", data_path="x.jsonl")
    with pytest.raises(DataError, match="unknown reasoning-gym basic_arithmetic split 'validation'"):
        ReasoningGymTask().load("validation")


def test_a_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'persuasion-gym\[reasoning-gym\]'"):
        ReasoningGymTask("basic_arithmetic").load("train")


def test_record_and_rescore_from_the_command_line(make_server, tmp_path):
    task = ReasoningGymTask()  # the env's defaults: basic_arithmetic at reasoning-gym's own difficulty
    server = make_server(scripted(golds(task)))
    script = Path(sys.executable).with_name("persuasion-gym")
    out = subprocess.run([str(script), "record", "--env", "Persuasion-ReasoningGym-v0", "--n-items", "3",
                          "--receiver", f"openai:scripted@{server.url}", "--out", str(tmp_path / "t.npz")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["cells"] == 30 and summary["values"]["oracle"] == 1.0
    assert load_table(tmp_path / "t.npz").meta["task_settings"]["dataset"] == "basic_arithmetic"
    assert "Persuasion-ReasoningGym-v0" in persuasion_gym.ENV_IDS
