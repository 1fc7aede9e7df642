from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from persuasion_gym.errors import DataError
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tasks.base import TaskItem
from persuasion_gym.tasks.math import HUB_ID, SUBJECTS, MATHTask
from persuasion_gym.tasks.math_answers import (
    extract_boxed,
    extract_math_answer,
    math_answers_match,
    normalize_answer,
)

# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "text, boxed",
    [
        (r"so $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        (r"\boxed{\left\{ \frac{a}{b}, \sqrt{2} \right\}}", r"\left\{ \frac{a}{b}, \sqrt{2} \right\}"),
        (r"first \boxed{3}, then \boxed{4}; finally \boxed{ 5 }", "5"),
        (r"$\boxed 7$ is it", "7"),
        (r"\fbox{x^{2}}", "x^{2}"),
        (r"\boxed{2} and a truncated \boxed{\frac{1}{", "2"),  # an unclosed box is no answer
        ("no box here, the answer is 3", None),
        (r"\boxedx", None),
    ],
)
def test_extract_boxed(text, boxed):
    assert extract_boxed(text) == boxed


@pytest.mark.parametrize(
    "response, answer",
    [
        (r"Adding, we get $\boxed{12}$. The answer is 13.", "12"),  # the box wins
        (r"Thus the answer is $\frac{1}{2}$.", r"\frac{1}{2}"),
        ("Step 1... Step 2...\nThe final answer is 7.", "7"),
        ("The answer is 5.\nOn reflection, the answer is 6.", "6"),
        ("Final answer: **(1, 2)**", "(1, 2)"),
        ("I am not sure.", None),
    ],
)
def test_extract_math_answer(response, answer):
    assert extract_math_answer(response) == answer


# ---------------------------------------------------------------- normalisation and matching


@pytest.mark.parametrize(
    "raw, normal",
    [
        (r"\dfrac12", r"\frac{1}{2}"),
        (r"\tfrac{3}4", r"\frac{3}{4}"),
        (r"\left( 3, 4 \right)", "(3,4)"),
        (r"10\text{ cm}^2", "10"),
        (r"90^{\circ}", "90"),
        ("k = -2.", "-2"),
        ("1,000,000", "1000000"),
        ("(1,000)", "(1,000)"),  # a tuple, not a thousands separator
        ("1, 2", "1,2"),
        (r"\$1\,000.50", "1000.5"),
        (".5", "0.5"),
        ("5.0", "5"),
        (r"2\sqrt 3", r"2\sqrt{3}"),
        (r"x \cdot y", r"x\cdot y"),  # the space keeps \cdot and y apart
        (r"\text{Monday}", "Monday"),
        ("7/8", r"\frac{7}{8}"),
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


MATCHING = [
    (r"\frac{1}{2}", r"\dfrac12"),
    (r"\dfrac12", "0.5"),
    ("0.5", r"\frac{1}{2}"),
    ("1/2", r"\frac{1}{2}"),
    (".5", "0.5"),
    (r"10\text{ cm}", "10"),
    (r"\mbox{10 cm}", "10"),
    ("10 inches", "10"),
    (r"90^\circ", "90"),
    ("90 degrees", "90"),
    ("x = 3", "3"),
    (r"\sqrt{2}/2", r"\frac{\sqrt{2}}{2}"),
    (r"\frac{\sqrt2}{2}", r"\frac{1}{\sqrt2}"),
    ("(1, 2)", "(1,2)"),
    ("1,000", "1000"),
    (r"\left( 3, 4 \right)", "(3,4)"),
    (r" 2 x + 1 ", "2x+1"),
    (r"50\%", "50"),
    (r"\$18.90", "18.9"),
    (r"3\sqrt{2}", r"\sqrt{18}"),
    (r"\{1, 2\}", r"\{2, 1\}"),
    (r"\pi r^2", r"r^2\pi"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
    (r"\text{(B)}", "(B)"),
    (r"\dfrac{3}{4}", "0.75"),
]
NOT_MATCHING = [
    (r"\frac{1}{3}", "0.5"),
    ("(2,1)", "(1,2)"),
    ("[1,2)", "(1,2)"),
    ("10", "100"),
    ("-3", "3"),
    ("0.333", r"\frac13"),
    (r"\text{(A)}", r"\text{(B)}"),
    ("", "3"),
    (None, "3"),
]


@pytest.mark.parametrize("answer, gold", MATCHING)
def test_equal_answers_match(answer, gold):
    assert math_answers_match(answer, gold)


@pytest.mark.parametrize("answer, gold", NOT_MATCHING)
def test_different_answers_do_not_match(answer, gold):
    assert not math_answers_match(answer, gold)


def test_without_math_verify_only_the_string_rules_apply(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # makes `import math_verify` fail
    assert math_answers_match(r"\dfrac12", "1/2")
    assert math_answers_match(r"10\text{ cm}", "10")
    assert not math_answers_match("0.5", r"\frac12")


def test_huge_numbers_are_compared_as_strings_in_worker_threads():
    # SymPy would compute 2^(2^100) for ever, holding the GIL, and a worker thread has no timeout:
    # run it in a subprocess so that a regression fails the test instead of hanging the suite.
    script = """
from concurrent.futures import ThreadPoolExecutor
from persuasion_gym.tasks.math_answers import math_answers_match
pairs = [("2^{2^{100}}", "3"), ("(10^{100})!", "3"), ("2^{2^{13}}", "2^{8192}"),
         ("2^{2^{100}}", "2^{2^{100}}"), ("2^{100}", "1267650600228229401496703205376")]
with ThreadPoolExecutor(max_workers=1) as pool:
    print(list(pool.map(lambda pair: math_answers_match(*pair), pairs)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[False, False, False, True, True]", done.stderr


def test_matching_is_the_same_in_worker_threads():
    pairs = (MATCHING + NOT_MATCHING)[::-1][:20]
    assert len(pairs) == 20
    # Threads first, so that they parse concurrently rather than hit the main thread's caches.
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda pair: math_answers_match(*pair), pairs))
    main = [math_answers_match(*pair) for pair in pairs]
    assert threaded == main
    assert main == [pair in MATCHING for pair in pairs]


# ---------------------------------------------------------------- loading


def write_jsonl(path: Path, records: list[dict]) -> Path:
    text = "".join(json.dumps(record) + "\n" for record in records)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


RECORDS = [
    {"problem": "What is $1+1$?", "answer": "2"},
    {"problem": "Simplify $\\frac{2}{4}$.", "solution": "We get $\\boxed{\\frac{1}{2}}$."},
    # the answer field wins over the solution's box
    {"problem": "Solve $x+1=4$.", "answer": "3", "solution": "So $x = \\boxed{4}$ (a typo)."},
]


def write_tree(root: Path, split: str) -> Path:
    """The original MATH layout: root/split/subject/n.json."""
    problems = {
        "algebra": {"2": ("What is $2+2$?", "$\\boxed{4}$"), "10": ("What is $5 \\cdot 2$?", "$\\boxed{10}$")},
        "geometry": {"1": ("A right angle has how many degrees?", "It is $\\boxed{90^\\circ}$.")},
    }
    for subject, files in problems.items():
        (root / split / subject).mkdir(parents=True)
        for stem, (problem, solution) in files.items():
            record = {"problem": problem, "level": "Level 1", "type": subject.title(), "solution": solution}
            (root / split / subject / f"{stem}.json").write_text(json.dumps(record))
    return root


def test_jsonl_with_answers_and_solutions(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", RECORDS)
    data = MATHTask().load("train", str(path))
    assert (data.name, data.split, data.source) == ("math", "train", str(path))
    assert [i.item_id for i in data.items] == ["math/train/0", "math/train/1", "math/train/2"]
    assert [i.gold for i in data.items] == ["2", r"\frac{1}{2}", "3"]
    assert data.items[0].text == "What is $1+1$?"
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(MATHTask().load("train", str(path), max_items=2)) == 2


def test_jsonl_gz_and_directories_holding_split_files(tmp_path, monkeypatch):
    gz = write_jsonl(tmp_path / "test.jsonl.gz", RECORDS)
    assert [i.gold for i in MATHTask().load("test", str(gz)).items] == ["2", r"\frac{1}{2}", "3"]
    flat = tmp_path / "flat"
    flat.mkdir()
    write_jsonl(flat / "test.jsonl", RECORDS[:1])
    assert MATHTask().load("test", str(flat)).source == str(flat / "test.jsonl")
    (tmp_path / "nested" / "math").mkdir(parents=True)
    write_jsonl(tmp_path / "nested" / "math" / "test.jsonl", RECORDS[:2])
    assert len(MATHTask().load("test", str(tmp_path / "nested"))) == 2
    # with no data_path, $PERSUASION_GYM_DATA_DIR/math/ is used
    monkeypatch.setenv("PERSUASION_GYM_DATA_DIR", str(tmp_path / "nested"))
    assert len(MATHTask().load("test")) == 2


def test_original_directory_layout(tmp_path):
    root = write_tree(tmp_path / "MATH", "test")
    data = MATHTask().load("test", str(root))
    ids = ["math/test/algebra/2", "math/test/algebra/10", "math/test/geometry/1"]  # numeric order
    assert [i.item_id for i in data.items] == ids
    assert [i.gold for i in data.items] == ["4", "10", r"90^\circ"]
    assert data.source == str(root / "test")
    # the MATH root's parent, and the split directory itself, are accepted too
    assert MATHTask().load("test", str(tmp_path)).items == data.items
    assert MATHTask().load("test", str(root / "test")).items == data.items
    # the sha covers every file's path and content
    expected = "".join(
        f"{f.relative_to(root / 'test').as_posix()}\t{hashlib.sha256(f.read_bytes()).hexdigest()}\n"
        for f in sorted((root / "test").glob("*/*.json"), key=lambda f: f.relative_to(root / "test").as_posix())
    )
    assert data.sha256 == hashlib.sha256(expected.encode()).hexdigest()
    (root / "test" / "geometry" / "1.json").write_text(json.dumps({"problem": "p", "solution": "\\boxed{91}"}))
    assert MATHTask().load("test", str(root)).sha256 != data.sha256
    assert [i.item_id for i in MATHTask().load("test", str(root), max_items=1).items] == ["math/test/algebra/2"]
    with pytest.raises(DataError, match="no MATH train data"):
        MATHTask().load("train", str(root))


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"problem": "p", "answer": "1"}\n\n{"problem": "q", "answer": \n')
    with pytest.raises(DataError, match=r"test\.jsonl:3: not valid JSON"):
        MATHTask().load("test", str(path))


@pytest.mark.parametrize(
    "record, message",
    [
        ({"problem": "p"}, r"d\.jsonl:2: no gold answer; give each record an 'answer'"),
        ({"problem": "p", "solution": "no box"}, r"d\.jsonl:2: no gold answer"),
        ({"answer": "1"}, r"d\.jsonl:2: missing field\(s\) problem"),
    ],
)
def test_records_without_a_gold_answer(tmp_path, record, message):
    path = write_jsonl(tmp_path / "d.jsonl", [RECORDS[0], record])
    with pytest.raises(DataError, match=message):
        MATHTask().load("test", str(path))


def test_bad_files_in_the_directory_layout(tmp_path):
    root = write_tree(tmp_path, "train")
    bad = root / "train" / "algebra" / "2.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"algebra/2\.json: not valid JSON"):
        MATHTask().load("train", str(root))
    bad.write_text(json.dumps({"problem": "p", "solution": "no box"}))
    with pytest.raises(DataError, match=r"algebra/2\.json: no gold answer.*\\boxed"):
        MATHTask().load("train", str(root))


def test_bad_arguments_and_missing_data(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="unknown MATH split 'dev'"):
        MATHTask().load("dev", str(tmp_path))
    with pytest.raises(DataError, match="max_items=0"):
        MATHTask().load("test", str(tmp_path), max_items=0)
    with pytest.raises(DataError, match=r"no MATH test data at .*nowhere: pass a \.jsonl"):
        MATHTask().load("test", str(tmp_path / "nowhere"))
    (tmp_path / "math").mkdir()  # present but empty: an error, not a silent fall back to the hub
    monkeypatch.setenv("PERSUASION_GYM_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="no MATH test data at .*math"):
        MATHTask().load("test")


def test_hub_errors_name_the_fixes(monkeypatch):
    monkeypatch.delenv("PERSUASION_GYM_DATA_DIR")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError, match="pass data_path=.*PERSUASION_GYM_DATA_DIR.*pip install datasets"):
        MATHTask().load("test")

    def unreachable(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=unreachable))
    with pytest.raises(DataError, match=f"could not load {HUB_ID} .*ConnectionError.*data_path="):
        MATHTask().load("test")


def test_hub_loads_every_subject_in_order(monkeypatch):
    monkeypatch.delenv("PERSUASION_GYM_DATA_DIR")
    calls = []

    def load_dataset(hub_id, subject, split):
        calls.append((hub_id, subject, split))
        return [{"problem": f"{subject} {k}", "solution": f"\\boxed{{{k}}}"} for k in range(2)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    data = MATHTask().load("train", max_items=3)
    assert calls == [(HUB_ID, subject, "train") for subject in SUBJECTS]
    ids = ["math/train/algebra/0", "math/train/algebra/1", "math/train/counting_and_probability/0"]
    assert [i.item_id for i in data.items] == ids
    assert data.items[2].text == "counting_and_probability 0" and data.items[2].gold == "0"
    assert data.source == f"hf:{HUB_ID}" and len(data.sha256) == 64


# ---------------------------------------------------------------- messages and scoring

ITEM = TaskItem("math/test/0", "Compute $\\frac{1}{2}+\\frac{1}{4}$.", r"\frac{3}{4}")


def test_task_attributes():
    task = MATHTask()
    assert (task.name, task.text_key, task.default_signals) == ("math", "problem", MATH_SIGNALS)
    assert task.max_text_length <= 4096 and set(ITEM.text) <= set(task.charset)


def test_build_messages_with_and_without_context():
    task = MATHTask()
    plain = task.build_messages(ITEM)
    advised = task.build_messages(ITEM, "Find a common denominator.")
    assert [m["role"] for m in plain] == ["system", "user"]
    assert "\\boxed{}" in plain[0]["content"] and "step by step" in plain[0]["content"]
    assert plain[1]["content"] == f"Problem: {ITEM.text}"
    assert advised[0] == plain[0]
    assert advised[1]["content"] == f"Problem: {ITEM.text}\n\nAdvice: Find a common denominator."


@pytest.mark.parametrize(
    "response, answer, correct",
    [
        (r"Common denominator 4: $\frac{2}{4}+\frac{1}{4}=\boxed{\dfrac34}$.", r"\dfrac34", True),
        (r"It is $\boxed{0.75}$", "0.75", True),
        ("The answer is $3/4$.", "3/4", True),
        (r"$\boxed{\frac{2}{3}}$", r"\frac{2}{3}", False),
        ("I give up.", None, False),
    ],
)
def test_score(response, answer, correct):
    score = MATHTask().score(ITEM, response)
    assert (score.answer, score.correct, score.reward) == (answer, correct, 1.0 if correct else 0.0)


def test_load_then_score_end_to_end(tmp_path):
    data = MATHTask().load("test", str(write_tree(tmp_path, "test")))
    task = MATHTask()
    rewards = [task.score(item, f"So the result is $\\boxed{{{item.gold}}}$.").reward for item in data.items]
    assert rewards == [1.0, 1.0, 1.0]
    assert MATHTask().score(data.items[2], "The answer is 90 degrees.").correct
    assert not MATHTask().score(data.items[2], "The answer is 45 degrees.").correct
