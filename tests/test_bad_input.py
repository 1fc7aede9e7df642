"""Bad input to the command line ends in one line that names the problem and the fix, exit
code 2 and no traceback (``-v`` adds it); Ctrl-C says what is saved. Run as a user runs them."""

import argparse
import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import persuasion_gym  # noqa: F401  (registers the envs)
from persuasion_gym.errors import ConfigError, InvalidActionError, TableError
from persuasion_gym.featurizers import HashedNgramFeaturizer, cached_features
from persuasion_gym.signals import SignalLibrary
from persuasion_gym.tasks import GSM8KTask

from testkit import REPO, synthetic_table

CLI = [sys.executable, "-m", "persuasion_gym.cli.main"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def error_line(out: subprocess.CompletedProcess, *words: str) -> str:
    """The one error line of a failed command, holding every word."""
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("persuasion-gym: error: "), out.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    """Small train and test tables (30 and 10 GSM8K items, 3 signals; signal 1 is always right)."""
    paths = []
    for split, n in (("train", 30), ("test", 10)):
        scores = np.zeros((n, 3, 1), np.float32)
        scores[:, 1] = 1
        paths.append(synthetic_table(GSM8KTask().load(split, max_items=n), ["", "one", "two"], scores)
                     .save(tmp_path / f"{split}.npz"))
    return paths[0], paths[1]


def test_check_on_an_env_that_asks_no_receiver_says_which_to_check():
    error_line(run("check", "--env", "Persuasion-Table-v0"), "asks no Receiver", "--env Persuasion-GSM8K-v0")


def test_an_unknown_env_id_names_the_closest_and_the_envs_command():
    for command in (["check"], ["bench", "--out", "runs/never"]):
        out = run(*command, "--env", "Persuasion-GSM8k-v0")
        error_line(out, "'Persuasion-GSM8k-v0'", "did you mean Persuasion-GSM8K-v0?", "persuasion-gym envs")
    out = run("bench", "--env", "Persuasion-GSM8K-v0,Persuasion-Mat-v0", "--out", "runs/never", "-v")
    assert out.returncode == 2 and "Traceback" in out.stderr  # -v keeps it
    assert out.stderr.splitlines()[-1].endswith("did you mean Persuasion-MATH-v0? `persuasion-gym envs` lists the "
                                                "registered ids")


def test_check_item_out_of_range_says_the_split_size(gold_server):
    receiver = f"openai:scripted@{gold_server.url}"
    for item in ("99999", "-1"):
        error_line(run("check", "--receiver", receiver, "--item", item),
                   f"--item {item}", "test split of Persuasion-GSM8K-v0 has 1319 items", "--item 0..1318")
    assert gold_server.count == 0


def test_a_zero_count_names_the_flag():
    line = error_line(run("record", "--n-items", "0", "--out", "never.npz"), "--n-items", "pass 1 or more")
    assert "max_items" not in line and "None" not in line
    error_line(run("bench", "--train-items", "-3", "--out", "runs/never"), "--train-items", "pass 1 or more")


def test_a_bad_signals_file_names_the_file_the_flag_and_the_problem(gold_server, tmp_path):
    receiver = f"openai:scripted@{gold_server.url}"
    missing, trailing, mapping = tmp_path / "missing.json", tmp_path / "trailing.json", tmp_path / "mapping.json"
    trailing.write_text('["", "Think step by step.",]\n')
    mapping.write_text('{"a": "b"}')
    expected = {missing: ("cannot read it", "No such file"),
                trailing: ("is not valid JSON", "line 1 column 28"),
                mapping: ("holds a JSON object", "a list of signal texts")}
    for path, words in expected.items():
        out = run("record", "--receiver", receiver, "--n-items", "1", "--signals-file", str(path),
                  "--out", str(tmp_path / "t.npz"))
        error_line(out, f"--signals-file {path}", *words)
    assert gold_server.count == 0 and not (tmp_path / "t.npz").exists()


def test_an_unreadable_table_is_named_with_the_fix(tables, tmp_path):
    train, test = tables
    cut = tmp_path / "cut.npz"
    cut.write_bytes(test.read_bytes()[:2000])
    text = tmp_path / "notes.npz"
    text.write_text("not a table\n")
    fix = "record it again with `persuasion-gym record ... --out"
    for path in (cut, text):
        with pytest.raises(TableError, match=f"{path} is not a readable persuasion-gym table.*truncated, corrupt"):
            gym.make("Persuasion-Table-v0", table=str(path))
    error_line(run("rescore", str(cut), "--out", str(tmp_path / "new.npz")), str(cut), "truncated, corrupt", fix)
    line = error_line(run("rescore", str(text), "--out", str(tmp_path / "new.npz")), str(text), fix)
    assert "pickle" not in line
    out = run("bench", "--env", "Persuasion-Table-v0", "--receiver", f"table:{cut}", "--train-receiver",
              f"table:{train}", "--policies", "none", "--featurizer", "hashed", "--out", str(tmp_path / "bench"))
    error_line(out, str(cut), "not a readable persuasion-gym table", fix)


def _interruptible() -> None:
    # A shell starts background jobs with SIGINT ignored, and children inherit that; a user's
    # Ctrl-C reaches a command run in the foreground, which is what this stands for.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)


def test_ctrl_c_during_record_says_what_is_saved_and_the_rerun_resumes(make_server, tmp_path):
    server = make_server(lambda m: "The answer is 3.", latency_s=0.2)
    out = tmp_path / "t.npz"
    command = ["record", "--receiver", f"openai:scripted@{server.url}?max_concurrency=2", "--n-items", "10",
               "--out", str(out)]
    cells = 10 * len(GSM8KTask().default_signals)
    proc = cli_process(*command)
    deadline = time.time() + 60
    while server.count < 6 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    line = stderr.splitlines()[-1]
    cache = Path(os.environ["PERSUASION_GYM_CACHE_DIR"]) / "responses.sqlite"
    assert line.startswith("persuasion-gym: interrupted: ") and f"in the response cache ({cache})" in line, line
    assert "run the same command again and only the missing ones are asked" in line
    saved = int(line.removeprefix("persuasion-gym: interrupted: ").split()[0])
    assert 0 < saved < cells and not out.exists()
    server.latency_s, asked = 0.0, server.count
    proc = cli_process(*command)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["cache_hits"] == saved and summary["receiver_calls"] == cells - saved
    assert server.count - asked == cells - saved and out.exists()


def test_a_text_action_on_a_table_says_it_only_has_its_recorded_signals(tables):
    env = gym.make("Persuasion-Table-v0", table=str(tables[1]), featurizer="hashed")
    env.reset(seed=0)
    expected = r"0\.\.2.*a recorded table only has its recorded signals.*use a live Receiver"
    with pytest.raises(InvalidActionError, match=expected) as raised:
        env.step("Think step by step.")
    assert "make the env with action_type='text'" not in str(raised.value)
    envs = gym.make_vec("Persuasion-Table-v0", num_envs=2, table=str(tables[1]), featurizer="hashed")
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match=expected):
        envs.step(("one", "two"))


def test_signals_over_the_length_limit_are_refused_by_check_and_evaluate(gold_server):
    receiver = f"openai:scripted@{gold_server.url}"
    error_line(run("check", "--receiver", receiver, "--signal", "x" * 600),
               "--signal has 600 characters", "over the 512 a step takes", "shorten it")
    error_line(run("check", "--receiver", receiver, "--signal", "Зачем?"), "--signal", "charset")
    env = gym.make("Persuasion-GSM8K-v0", receiver=receiver, split="test", max_items=2, featurizer="hashed",
                   action_type="text").unwrapped
    with pytest.raises(InvalidActionError, match="600 characters is over this env's limit of 512"):
        env.evaluate(["x" * 600, "short"])
    assert gold_server.count == 0


def test_a_missing_api_key_is_a_configuration_error_without_the_rerun_hint(tmp_path):
    line = error_line(run("record", "--receiver", "openai:gpt-4o-mini", "--n-items", "1",
                          "--out", str(tmp_path / "t.npz")), "missing API key", "set OPENAI_API_KEY")
    assert "run the same command again" not in line and "missing ones" not in line


def test_comma_lists_take_spaces_around_names(tables, tmp_path):
    train, test = tables
    out = run("bench", "--env", " Persuasion-Table-v0 ", "--receiver", f" table:{test}, table:{test} ",
              "--train-receiver", f"table:{train} ,table:{train}", "--policies", "none, ucb",
              "--timesteps", "50", "--featurizer", "hashed", "--out", str(tmp_path / "bench"))
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "bench" / "results.json").read_text())["rows"]
    assert sorted({row["policy"] for row in rows}) == ["none", "ucb"]
    error_line(run("bench", "--policies", "none,,ucb", "--out", str(tmp_path / "never")), "--policies", "empty")


def test_the_scripted_server_on_a_port_in_use_says_pick_another():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "persuasion_gym.testing", "--port", str(port)],
                             capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"python -m persuasion_gym.testing: error: port {port} on 127.0.0.1 is in use: "
                                  "pick another --port (--port 0 takes a free one)")


def test_every_flag_says_its_meaning_and_default():
    from persuasion_gym.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0:  # positionals, --help, store_true
                continue
            shown = formatter._get_help_string(action) or ""
            assert action.help and (action.required or "default" in shown), (name, action.option_strings, shown)
    help_text = run("bench", "--help").stdout
    assert "the held-out split's first N items (default: all)" in help_text
    assert "--seed SEED           the random seed (default: 0)" in help_text
    # The examples: every flag has help that says its default.
    for example in sorted((REPO / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(example.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                keywords = {k.arg: k.value for k in node.keywords}
                assert "help" in keywords, (example.name, ast.unparse(node))
                assert "default" in ast.unparse(keywords["help"]), (example.name, ast.unparse(node))
    out = subprocess.run([sys.executable, "examples/benchmark_policies.py", "--help"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0 and "(default: 50)" in out.stdout


def test_featurizing_many_texts_shows_progress(capsys, tmp_path):
    texts = [f"question number {i}" for i in range(600)]
    features = cached_features(HashedNgramFeaturizer(dim=32), texts, tmp_path)
    assert features.shape == (600, 32)
    np.testing.assert_array_equal(features, HashedNgramFeaturizer(dim=32).transform(texts))
    assert "featurizing" in capsys.readouterr().err
    cached_features(HashedNgramFeaturizer(dim=32), texts[:100], tmp_path)  # a few texts: no bar
    assert "featurizing" not in capsys.readouterr().err


def test_a_mapping_is_not_a_signal_library():
    with pytest.raises(ConfigError, match="signals is a dict, not a list"):
        SignalLibrary({"a": "b"})  # its keys would silently become the signals
