import hashlib

import pytest

from persuasion_gym.errors import ConfigError, DataError
from persuasion_gym.signals import MATH_SIGNALS, SignalLibrary
from persuasion_gym.tasks import GSM8KTask, make_task


def test_loads_the_real_splits(gsm8k_dir):
    task = GSM8KTask()
    train, test = task.load("train", str(gsm8k_dir)), task.load("test", str(gsm8k_dir))
    assert (len(train), len(test)) == (7473, 1319)
    first = train.items[0]
    assert first.item_id == "gsm8k/train/0"
    assert first.text.startswith("Natalia sold clips")
    assert first.gold == "72"
    assert train.sha256 == hashlib.sha256((gsm8k_dir / "train.jsonl").read_bytes()).hexdigest()
    assert train.source == str(gsm8k_dir / "train.jsonl")
    # thousands separators are removed from gold answers
    assert all("," not in item.gold for item in train.items)


def test_max_items_file_path_and_data_dir_env(gsm8k_dir, monkeypatch):
    task = GSM8KTask()
    sliced = task.load("test", str(gsm8k_dir / "test.jsonl"), max_items=5)
    assert [i.item_id for i in sliced.items] == [f"gsm8k/test/{k}" for k in range(5)]
    monkeypatch.setenv("PERSUASION_GYM_DATA_DIR", str(gsm8k_dir.parent))
    assert task.load("test", max_items=5).items == sliced.items


def test_malformed_line_names_file_and_line(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q1", "answer": "x #### 1"}\n\n{"question": "q2", "answer": \n')
    with pytest.raises(DataError, match=r"train\.jsonl:3: not valid JSON"):
        GSM8KTask().load("train", str(bad))


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"question": "q"}', r":1: missing field\(s\) answer"),
        ('{"question": "q", "answer": "no final line"}', r":1: the answer has no '#### <number>'"),
        ('["a list"]', r":1: expected a JSON object"),
    ],
)
def test_bad_records(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        GSM8KTask().load("train", str(path))


def test_missing_data_says_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no GSM8K test data at .*pass a .jsonl file"):
        GSM8KTask().load("test", str(tmp_path))
    monkeypatch.delenv("PERSUASION_GYM_DATA_DIR")
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="PERSUASION_GYM_DATA_DIR"):
            GSM8KTask().load("test")
    with pytest.raises(DataError, match="unknown GSM8K split 'dev'"):
        GSM8KTask().load("dev")
    with pytest.raises(DataError, match="max_items=0"):
        GSM8KTask().load("test", max_items=0)


def test_make_task():
    assert isinstance(make_task("gsm8k"), GSM8KTask)
    with pytest.raises(ConfigError, match="unknown task 'gsm9k'"):
        make_task("gsm9k")


def test_messages_carry_the_context_only_when_given():
    task, item = GSM8KTask(), GSM8KTask().load("test", max_items=1).items[0]
    plain = task.build_messages(item)
    advised = task.build_messages(item, "Think step by step.")
    assert plain[0]["role"] == "system" and "The answer is" in plain[0]["content"]
    assert "Advice" not in plain[1]["content"] and item.text in plain[1]["content"]
    assert advised[1]["content"].endswith("Advice: Think step by step.")


def test_default_math_library():
    assert MATH_SIGNALS.empty_index == 0
    hints = [s for s in MATH_SIGNALS if s]
    assert len(hints) >= 8 and len(set(hints)) == len(hints)
    assert all(len(h.split()) >= 5 for h in hints)


def test_signal_library_validation():
    assert list(SignalLibrary(["", "a"])) == ["", "a"]
    assert SignalLibrary(["a"]).empty_index is None
    assert SignalLibrary(["a", "b"]).fingerprint != SignalLibrary(["b", "a"]).fingerprint
    with pytest.raises(ConfigError, match="signals 0 and 2 are the same text 'a'"):
        SignalLibrary(["a", "b", "a"])
    with pytest.raises(ConfigError, match="signal 1 is int"):
        SignalLibrary(["a", 3])
    with pytest.raises(ConfigError, match="empty"):
        SignalLibrary([])
