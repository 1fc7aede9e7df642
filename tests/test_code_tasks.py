"""Code tasks: extraction, HumanEval (all 164 canonical solutions), MBPP, the env end to end."""

from __future__ import annotations

import gzip
import json
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import persuasion_gym
from persuasion_gym.envs import HumanEvalEnv
from persuasion_gym.errors import ConfigError, DataError
from persuasion_gym.sandbox import Limits, Sandbox
from persuasion_gym.signals import CODE_SIGNALS
from persuasion_gym.tables import load_table
from persuasion_gym.tables.record import record
from persuasion_gym.tasks import HumanEvalTask, MBPPTask, extract_program
from persuasion_gym.tasks.code_extraction import code_blocks
from persuasion_gym.tasks.humaneval import packaged_file

STUB = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum of xs.\n    >>> total([1, 2])\n    3\n    """\n'
TESTS = "def check(candidate):\n    assert candidate([1, 2]) == 3\n    assert candidate([]) == 0\n\ncheck(total)\n"


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    with gzip.open(packaged_file(), "rt") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def task() -> HumanEvalTask:
    return HumanEvalTask(Sandbox(limits=Limits(timeout_s=5)))


# -- extraction ------------------------------------------------------------------------------
FULL = "def total(xs):\n    return sum(xs)\n"
RESPONSES = {
    "fenced full function": f"Here you go:\n```python\n{FULL}```\nIt sums the list.",
    "fenced body only": "```python\n    return sum(xs)\n```",
    "fenced body, not indented": "```\nresult = 0\nfor x in xs:\n    result += x\nreturn result\n```",
    "bare body": "    return sum(xs)\n",
    "prose around an unfenced function": f"Sure! The idea is simple.\n{FULL}\nThis runs in O(n) time.",
    "helper in another block": "```python\ndef helper(xs):\n    return sum(xs)\n```\nthen\n```python\ndef total(xs):\n    return helper(xs)\n```",
    "demo code is dropped": f"```python\n{FULL}\nprint(total([1]))\nassert total([1]) == 5\nif __name__ == '__main__':\n    while True:\n        pass\n```",
    "cut-off response, unclosed fence": f"```python\n{FULL}",
    "py tag and decorator": "```py\nimport functools\n\n@functools.lru_cache(None)\ndef cached(t):\n    return sum(t)\n\ndef total(xs):\n    return cached(tuple(xs))\n```",
    "later block corrects the first": "```python\ndef total(xs):\n    return 0\n```\nOops, fixed:\n```python\ndef total(xs):\n    return sum(xs)\n```",
    "signature and docstring repeated": f"```python\n{STUB}    return sum(xs)\n```",
}


@pytest.mark.parametrize("name", list(RESPONSES))
def test_extraction_gives_a_passing_program(task, name):
    program = extract_program(RESPONSES[name], "total", STUB)
    assert program is not None and program.startswith(STUB.rstrip())
    verdict = task.sandbox.run(task._code_item(_item()).check(program))
    assert verdict.passed, (program, verdict.detail)


def test_extraction_without_usable_code():
    assert extract_program("I cannot help with that.", "total", STUB) is None
    assert extract_program("```python\ndef other(xs):\n    return 1\n```", "total", "") is None
    assert extract_program("```text\nreturn sum(xs)\n```", "total", "") is None
    assert code_blocks("```json\n{}\n```") == []


def _item():
    from persuasion_gym.tasks import CodeItem

    return CodeItem("t/0", STUB, FULL, entry_point="total", tests=TESTS, setup=STUB, stub=STUB)


# -- HumanEval ---------------------------------------------------------------------------------
def test_all_164_canonical_solutions_pass_and_wrong_ones_fail(task, problems):
    dataset = task.load("all")
    assert len(dataset) == 164 and dataset.items[0].item_id == "HumanEval/0"
    # As a chat model would answer: the whole function in a fence, with a line of prose.
    right = [f"Here is the solution.\n```python\n{p['prompt']}{p['canonical_solution']}```" for p in problems]
    scores = task.score_batch(dataset.items, right)
    failed = [item.item_id for item, score in zip(dataset.items, scores) if not score.correct]
    assert failed == []
    assert {s.details["sandbox"] for s in scores} == {task.sandbox.isolation.name}
    wrong = task.score_batch(dataset.items, ["```python\n    return None\n```"] * 164)
    assert not any(s.correct for s in wrong) and {s.details["verdict"] for s in wrong} == {"failed"}


def test_humaneval_splits_and_data_errors(task, tmp_path, problems):
    train, test = task.load("train"), task.load("test")
    ids = {i.item_id for i in train.items} | {i.item_id for i in test.items}
    assert len(train) + len(test) == 164 and len(ids) == 164 and 40 <= len(test) <= 70
    assert task.load("test", max_items=3).items == test.items[:3]
    with pytest.raises(DataError, match="unknown HumanEval split 'validation'"):
        task.load("validation")
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(problems[0]) + "\n" + json.dumps({"task_id": "x"}) + "\n")
    with pytest.raises(DataError, match=r"mine.jsonl:2: missing field\(s\) prompt"):
        task.load("all", str(path))
    path.write_text(json.dumps(problems[0]) + "\n")
    with pytest.raises(DataError, match="no HumanEval data at"):
        task.load("all", str(tmp_path))  # a directory without HumanEval.jsonl(.gz)
    mine = task.load("all", str(path))
    assert [i.item_id for i in mine.items] == ["HumanEval/0"] and mine.source == str(path)


def _solve_if_advised(problems, signal: str):
    """A Receiver that writes the canonical solution when advised ``signal``, else a wrong body."""
    by_prompt = {p["prompt"].rstrip(): p for p in problems}

    def reply(messages):
        user = messages[-1]["content"]
        prompt = re.search(r"```python\n(.*?)\n```", user, re.S).group(1)
        problem = by_prompt[prompt]
        if user.endswith(f"Advice: {signal}"):
            return f"```python\n{problem['prompt']}{problem['canonical_solution']}```"
        return "```python\n    return None\n```"

    return reply


def test_env_end_to_end(make_server, problems):
    server = make_server(_solve_if_advised(problems, CODE_SIGNALS[3]))
    env = gym.make("Persuasion-HumanEval-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                   max_items=12, timeout_s=5)
    assert isinstance(env.unwrapped, HumanEvalEnv) and env.action_space == gym.spaces.Discrete(len(CODE_SIGNALS))
    obs, info = env.reset(seed=0)
    assert info["item_id"].startswith("HumanEval/") and info["prompt"].startswith(("def", "from", "import", "\n"))
    _, reward, terminated, _, step = env.step(3)
    assert (reward, terminated) == (1.0, True)
    assert step["verdict"] == "passed" and step["sandbox"] in ("bubblewrap", "rlimits")
    assert step["answer"].startswith(info["prompt"].rstrip()) and step["signal"] == CODE_SIGNALS[3]
    env.reset(seed=0)
    _, reward, _, _, step = env.step(0)
    assert reward == 0.0 and step["verdict"] == "failed"
    settings = env.unwrapped.provenance()["task_settings"]
    assert settings["sandbox"] == step["sandbox"] and settings["limits"]["timeout_s"] == 5
    for action in range(len(CODE_SIGNALS)):  # warm the cache so check_env's two seeded steps match
        env.unwrapped.evaluate([action] * 12)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_vector_env_runs_a_batch_in_parallel(make_server, problems):
    server = make_server(_solve_if_advised(problems, CODE_SIGNALS[1]))
    envs = gym.make_vec("Persuasion-HumanEval-v0", num_envs=4, receiver=f"openai:scripted@{server.url}",
                        featurizer="hashed", split="test", max_items=20)
    obs, _ = envs.reset(seed=1)
    assert obs.shape == (4, 1024)
    _, rewards, terminated, _, info = envs.step(np.array([1, 1, 0, 2]))
    assert rewards.tolist() == [1.0, 1.0, 0.0, 0.0] and terminated.all()
    envs.close()


def test_record_a_table_and_replay_it(make_server, problems, tmp_path):
    server = make_server(_solve_if_advised(problems, CODE_SIGNALS[2]))
    env = gym.make("Persuasion-HumanEval-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                   max_items=5).unwrapped
    table = record(env.task, env.receiver, env.dataset, list(env.signals), out=tmp_path / "he.npz", progress=False)
    assert table.scores[:, 2, 0].tolist() == [1.0] * 5 and table.scores[:, 0, 0].sum() == 0
    replay = gym.make("Persuasion-Table-v0", table=str(tmp_path / "he.npz"), featurizer="hashed")
    meta = load_table(tmp_path / "he.npz").meta
    assert replay.unwrapped.task.name == "humaneval" and meta["task"] == "humaneval"
    assert meta["task_settings"]["sandbox"] in ("bubblewrap", "rlimits")
    replay.reset(seed=0)
    assert replay.step(2)[1] == 1.0
    env.close()


# -- MBPP ----------------------------------------------------------------------------------------
def mbpp_record(task_id: int, good: bool = True) -> dict:
    return {
        "task_id": task_id,
        "text": "Write a function to find the volume of a sphere.",
        "code": "import math\ndef volume_sphere(r):\n    return (4 / 3) * math.pi * r ** 3" if good else "def volume_sphere(r):\n    return r",
        "test_list": ["assert math.isclose(volume_sphere(10), 4188.790204786391, rel_tol=0.001)",
                      "assert math.isclose(volume_sphere(1), 4.1887902047863905, rel_tol=0.001)"],
        "test_setup_code": "",
        "challenge_test_list": [],
    }


def test_mbpp_from_the_original_file_cut_by_task_id(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(mbpp_record(i)) for i in (2, 11, 12, 520, 700)) + "\n")
    task = MBPPTask(Sandbox(limits=Limits(timeout_s=5)))
    assert [i.item_id for i in task.load("test", str(path)).items] == ["mbpp/11", "mbpp/12"]
    assert [i.item_id for i in task.load("train", str(path)).items] == ["mbpp/700"]
    item = task.load("validation", str(tmp_path)).items[0]
    assert item.entry_point == "volume_sphere" and "Your code should pass these tests" in item.text
    right = task.score(item, f"```python\n{item.gold}\n```")
    assert right.correct and right.details["verdict"] == "passed"
    assert not task.score(item, "```python\ndef volume_sphere(r):\n    return r\n```").correct


def test_mbpp_sanitized_and_per_split_files(tmp_path):
    sanitized = {"task_id": 3, "prompt": "Write a python function to add two numbers.",
                 "code": "def add_two(a, b):\n    return a + b", "test_imports": [],
                 "test_list": ["assert add_two(1, 2) == 3"]}
    (tmp_path / "test.jsonl").write_text(json.dumps(sanitized) + "\n")
    task = MBPPTask(Sandbox(limits=Limits(timeout_s=5)))
    (item,) = task.load("test", str(tmp_path)).items
    assert item.item_id == "mbpp/3" and item.entry_point == "add_two"
    assert task.score(item, "Sure:\n```python\ndef add_two(a, b):\n    return a + b\n```").correct
    (tmp_path / "test.jsonl").write_text(json.dumps(sanitized) + "\n{not json\n")
    with pytest.raises(DataError, match=r"test.jsonl:2: not valid JSON"):
        task.load("test", str(tmp_path))
    (tmp_path / "test.jsonl").write_text(json.dumps({"task_id": 1, "text": "x", "code": "", "test_list": []}) + "\n")
    with pytest.raises(DataError, match="non-empty 'test_list'"):
        task.load("test", str(tmp_path))
    with pytest.raises(DataError, match="unknown MBPP split"):
        task.load("dev", str(tmp_path))


def test_mbpp_env_through_gym_make(make_server, tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(mbpp_record(i)) for i in (601, 602)) + "\n")
    server = make_server(lambda m: "```python\nimport math\ndef volume_sphere(r):\n    return 4 / 3 * math.pi * r ** 3\n```")
    env = gym.make("Persuasion-MBPP-v0", receiver=f"openai:scripted@{server.url}", data_path=str(path),
                   featurizer="hashed")
    _, info = env.reset(seed=0)
    assert info["item_id"] in ("mbpp/601", "mbpp/602") and "volume" in info["text"]
    assert env.step(0)[1] == 1.0
    env.close()


# -- tasks of the user's own -----------------------------------------------------------------------
def test_register_env_for_a_custom_task(make_server):
    from persuasion_gym.signals import SignalLibrary
    from persuasion_gym.tasks import Dataset, Score, Task, TaskItem

    class Capitals(Task):
        name = "capitals-test"
        default_signals = SignalLibrary(["", "Think of the seat of government."])
        text_key = "country"

        def load(self, split="train", data_path=None, max_items=None):
            items = tuple(TaskItem(f"cap/{c}", c, gold) for c, gold in [("France", "Paris"), ("Japan", "Tokyo")])
            return Dataset(self.name, split, items[:max_items], "inline", "0" * 64)

        def build_messages(self, item, context=""):
            return [{"role": "user", "content": f"Capital of {item.text}?" + (f" {context}" if context else "")}]

        def score(self, item, response):
            right = item.gold.lower() in response.lower()
            return Score(response, right, float(right))

    persuasion_gym.register_env("Persuasion-CapitalsTest-v0", Capitals(), featurizer="hashed")
    server = make_server(lambda m: "Paris" if "seat" in m[-1]["content"] else "Lyon")
    env = gym.make("Persuasion-CapitalsTest-v0", receiver=f"openai:scripted@{server.url}")
    _, info = env.reset(options={"item_index": 0})
    assert info["country"] == "France" and env.step(1)[1] == 1.0
    envs = gym.make_vec("Persuasion-CapitalsTest-v0", num_envs=2, receiver=f"openai:scripted@{server.url}")
    envs.reset(seed=0)
    assert envs.step(np.array([0, 0]))[1].tolist() == [0.0, 0.0]
    envs.close()
    env.close()


def test_without_bubblewrap_the_fallback_is_announced(make_server, problems, monkeypatch, tmp_path, caplog):
    from persuasion_gym.sandbox import isolation

    monkeypatch.setattr(isolation, "_detected", {})  # probe again, now with no bwrap on PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    server = make_server(_solve_if_advised(problems, CODE_SIGNALS[1]))
    with caplog.at_level("WARNING", logger="persuasion_gym.sandbox"), \
            pytest.warns(RuntimeWarning, match="bwrap is not on PATH.*NO filesystem, network or PID isolation"):
        env = gym.make("Persuasion-HumanEval-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                       max_items=3)
        env.reset(seed=0)
        _, reward, _, _, step = env.step(1)
    assert reward == 1.0 and step["sandbox"] == "rlimits"
    assert "apt-get install bubblewrap" in caplog.text
    with pytest.raises(ConfigError, match="'bwrap' is not available: bwrap is not on PATH"):
        gym.make("Persuasion-HumanEval-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                 max_items=3, isolation="bwrap")
    env.close()
