"""Re-scoring a recorded table from its stored responses: no Receiver call, the current scorer,
code run again in the sandbox, and what re-scored it in the metadata."""

from __future__ import annotations

import importlib.metadata
import json
import sys
from dataclasses import replace

import numpy as np
import pytest

import persuasion_gym
from persuasion_gym.cli.main import main
from persuasion_gym.errors import DataError
from persuasion_gym.tables import load_table, rescore
from persuasion_gym.tasks import GSM8KTask, HumanEvalTask, MATHTask

from testkit import synthetic_table


def stale_gsm8k_table(tmp_path):
    """A table whose responses are right in formats an old scorer missed ("$1,234.00"):
    signal 1's cells were scored 0 and their answers lost."""
    items = GSM8KTask().load("test", max_items=8)
    scores = np.zeros((8, 3, 2), np.float32)
    scores[:, 2, :] = 1
    table = synthetic_table(items, ["", "a", "b"], scores)
    for i, item in enumerate(items.items):
        for t in range(2):
            table.responses[i][1][t] = f"So she makes ${int(item.gold):,}.00 in all. The answer is ${int(item.gold):,}.00"
            table.answers[i][1][t] = None
    path = tmp_path / "stale.npz"
    replace(table, meta={**table.meta, "package_version": "0.0.1"}).save(path)
    return path


def test_rescore_fixes_stale_cells_without_asking_anyone(tmp_path, capsys):
    path = stale_gsm8k_table(tmp_path)
    before = load_table(path)
    assert main(["rescore", str(path), "--out", str(tmp_path / "new.npz")]) == 0
    report = json.loads(capsys.readouterr().out)
    after = load_table(tmp_path / "new.npz")
    assert report["changed_scores"] == 16 and report["changed_answers"] == 16 and report["receiver_calls"] == 0
    assert after.scores[:, 1, :].tolist() == [[1.0, 1.0]] * 8  # the current scorer reads "$1,234.00"
    np.testing.assert_array_equal(after.scores[:, [0, 2], :], before.scores[:, [0, 2], :])
    assert float(after.answers[0][1][0].replace(",", "")) == float(before.golds[0]) and after.responses == before.responses
    assert report["values_before"]["oracle"] == 1.0 and report["values_after"]["best_fixed"] == 1.0
    assert report["values_before"]["best_fixed_signal"] == 2 and report["values_after"]["best_fixed_signal"] in (1, 2)
    rescored = after.meta["rescored"]
    assert rescored["package_version"] == persuasion_gym.__version__ and rescored["scorer"]["task"] == "gsm8k"
    assert rescored["previous"]["package_version"] == "0.0.1"
    assert after.meta["receiver"] == before.meta["receiver"]  # still the Receiver that answered
    assert load_table(path).scores.tolist() == before.scores.tolist()  # the original is left alone
    # Re-scoring the re-scored table changes nothing.
    again = rescore(tmp_path / "new.npz")
    assert again.changed_scores == 0 and again.table.meta["rescored"]["previous"]["rescored"] is not None


@pytest.mark.filterwarnings("ignore:.*sandbox.*:RuntimeWarning")
def test_rescore_runs_stored_programs_again_in_the_sandbox(tmp_path):
    items = HumanEvalTask().load("all", max_items=3)
    table = synthetic_table(items, ["", "hint"], np.zeros((3, 2, 1), np.float32))
    for i, item in enumerate(items.items):
        table.responses[i][0][0] = f"```python\n{item.text}{item.gold}```"  # the canonical solution
        table.responses[i][1][0] = "I cannot help with that."
    table.save(tmp_path / "code.npz")
    result = rescore(tmp_path / "code.npz")
    assert result.table.scores[:, 0, 0].tolist() == [1.0] * 3 and result.table.scores[:, 1, 0].tolist() == [0.0] * 3
    assert result.changed_scores == 3 and result.table.meta["rescored"]["scorer"]["settings"]["sandbox"]
    # Its tests come from the data set the table was recorded on: another file is refused.
    other = tmp_path / "HumanEval.jsonl"
    other.write_text("\n".join(json.dumps({"task_id": f"HumanEval/{i}", "prompt": "def f():\n", "entry_point": "f",
                                           "canonical_solution": "    return 1\n", "test": "def check(c): pass"})
                               for i in range(3)) + "\n")
    with pytest.raises(DataError, match="is not the one the table was recorded on"):
        rescore(tmp_path / "code.npz", data_path=str(other))


def test_tables_that_cannot_be_rescored_get_clear_errors(tmp_path, capsys):
    path = stale_gsm8k_table(tmp_path)
    table = load_table(path)
    replace(table, meta={**table.meta, "task": "nonesuch"}).save(tmp_path / "unknown.npz")
    assert main(["rescore", str(tmp_path / "unknown.npz"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "task 'nonesuch' is unknown here" in capsys.readouterr().err
    replace(table, responses=[[[] for _ in row] for row in table.responses]).save(tmp_path / "bare.npz")
    with pytest.raises(DataError, match="no stored response"):
        rescore(tmp_path / "bare.npz")
    assert not (tmp_path / "x.npz").exists()


def without(path, out, text=None, meta=None):
    """A copy of the table file at ``path`` lacking one key of its texts or its meta (as an
    older or hand-made file might)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    texts, info = json.loads(str(arrays["texts"])), json.loads(str(arrays["meta"]))
    texts.pop(text, None)
    info.pop(meta, None)
    np.savez_compressed(out, **{**arrays, "texts": np.array(json.dumps(texts)), "meta": np.array(json.dumps(info))})
    return out


def test_a_table_missing_its_responses_or_its_task_gets_a_clear_error(tmp_path, capsys):
    path = stale_gsm8k_table(tmp_path)
    bare = without(path, tmp_path / "no-responses.npz", text="responses")
    with pytest.raises(DataError, match=r"no-responses\.npz lacks texts\.responses.*persuasion-gym record"):
        load_table(bare)
    assert main(["rescore", str(bare), "--out", str(tmp_path / "x.npz")]) == 2
    assert "lacks texts.responses" in capsys.readouterr().err
    nameless = without(path, tmp_path / "no-task.npz", meta="task")
    with pytest.raises(DataError, match=r"no-task\.npz lacks meta\.task, .*: name its task.*--task NAME"):
        rescore(nameless)
    assert not (tmp_path / "x.npz").exists()
    # Naming the task is the fix; a wrong name is refused when the table records its own.
    assert main(["rescore", str(nameless), "--task", "gsm8k", "--out", str(tmp_path / "named.npz")]) == 0
    assert json.loads(capsys.readouterr().out)["changed_scores"] == 16
    assert load_table(tmp_path / "named.npz").task == "gsm8k"
    with pytest.raises(DataError, match="recorded on task 'gsm8k', not 'math'"):
        rescore(path, task="math")
    # --sandbox is for code tables.
    assert main(["rescore", str(path), "--sandbox", "local", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--sandbox is for code tasks" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*sandbox.*:RuntimeWarning")
def test_rescore_runs_programs_under_the_sandbox_limits_the_table_was_recorded_with(tmp_path, capsys):
    items = HumanEvalTask().load("all", max_items=2)
    table = synthetic_table(items, ["", "slow"], np.ones((2, 2, 1), np.float32))
    for i, item in enumerate(items.items):
        table.responses[i][0][0] = f"```python\n{item.text}{item.gold}```"
        # Right, but 3 s late (once per run): within the default 10 s timeout, not the recorded 1.5 s.
        late = "    import time\n    if not hasattr(time, 'slept'):\n        time.sleep(3)\n        time.slept = True\n"
        table.responses[i][1][0] = f"```python\n{item.text}{late}{item.gold}```"
    limits = {"timeout_s": 1.5, "cpu_s": None, "memory_mb": 768, "file_mb": 16, "tmp_mb": 64, "processes": 32,
              "open_files": 256}
    meta = {**table.meta, "task_settings": {"sandbox": "bubblewrap", "limits": limits}}
    replace(table, meta=meta).save(tmp_path / "code.npz")
    assert main(["rescore", str(tmp_path / "code.npz"), "--sandbox", "local", "--out", str(tmp_path / "new.npz")]) == 0
    assert json.loads(capsys.readouterr().out)["rescored"]["settings"]["limits"] == limits
    after = load_table(tmp_path / "new.npz")
    assert after.scores[:, :, 0].tolist() == [[1.0, 0.0], [1.0, 0.0]]  # the slow programs timed out
    assert after.meta["task_settings"]["limits"]["timeout_s"] == 1.5
    assert after.meta["rescored"]["previous"]["task_settings"]["limits"] == limits
    # A task passed in keeps its own sandbox (default limits): the slow programs pass.
    default = rescore(tmp_path / "code.npz", task=HumanEvalTask())
    assert default.table.scores[:, :, 0].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    # Limits this version does not know (a table from a newer one) are refused, not dropped.
    replace(table, meta={**meta, "task_settings": {"limits": {**limits, "gpu_s": 1}}}).save(tmp_path / "newer.npz")
    with pytest.raises(DataError, match="sandbox limits name gpu_s, unknown to persuasion-gym"):
        rescore(tmp_path / "newer.npz")


def test_math_settings_and_rescore_metadata_record_math_verify(tmp_path, monkeypatch):
    version = importlib.metadata.version("math-verify")
    assert MATHTask().settings() == {"math_verify": version}
    data = tmp_path / "math.jsonl"
    data.write_text(json.dumps({"problem": "Rationalise 1/sqrt(2).", "answer": "\\frac{1}{\\sqrt{2}}"}) + "\n")
    items = MATHTask().load("test", data_path=str(data))
    table = synthetic_table(items, [""], np.zeros((1, 1, 1), np.float32))
    table.responses[0][0][0] = "So the answer is $\\boxed{\\frac{\\sqrt{2}}{2}}$."  # equal only symbolically
    table.save(tmp_path / "math.npz")
    result = rescore(tmp_path / "math.npz")
    assert result.table.scores.item() == 1.0
    assert result.table.meta["rescored"]["scorer"]["settings"] == {"math_verify": version}
    assert result.table.meta["task_settings"] == {"math_verify": version}
    # Without math-verify only the string rules apply, and the settings say so.
    monkeypatch.setitem(sys.modules, "math_verify", None)
    assert MATHTask().settings() == {"math_verify": None}
    without_it = rescore(tmp_path / "math.npz")
    assert without_it.table.scores.item() == 0.0 and without_it.table.meta["task_settings"] == {"math_verify": None}
