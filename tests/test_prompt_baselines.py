"""The baselines the field would pick instead of a trained small Advisor: GEPA's prompt search
and a prompted large Advisor, in ``bench`` beside the others, against scripted servers where
the Receiver is right only when the advice names a word no library signal holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persuasion_agents.benchmark import BenchmarkIncompleteError, Setting, run_benchmark
from persuasion_gym.errors import ConfigError
from testkit import advice_of, question_of

pytest.importorskip("gepa")


@pytest.fixture
def zebra_receiver(make_server, gold_by_question):
    """Right only when the advice says "zebra" (no library signal does)."""
    return make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if 'zebra' in advice_of(m).lower() else -1}.")


def test_gepa_finds_the_advice_the_library_lacks_within_its_budget(zebra_receiver, make_server,
                                                                   tmp_path: Path) -> None:
    reflection = make_server(lambda m: "A better instruction:\n```\nSolve it with the zebra method.\n```")
    spec = f"openai:scripted@{zebra_receiver.url}"
    setting = Setting("Persuasion-GSM8K-v0", spec, n_items=3, train_items=4)
    options = {"gepa": {"reflection_lm": f"openai:scripted@{reflection.url}", "budget": 30,
                        "out": str(tmp_path / "bench" / "gepa")}}
    rows = run_benchmark([setting], ["none", "best-fixed", "gepa"], tmp_path / "bench", featurizer="hashed",
                         progress=False, policy_options=options)
    by = {r["policy"]: r for r in rows}
    assert by["best-fixed"]["accuracy"] == 0.0 and by["gepa"]["accuracy"] == 1.0
    run = json.loads(next((tmp_path / "bench" / "runs").glob("*__gepa.json")).read_text())
    assert "zebra" in run["gepa"]["text"].lower() and run["gepa"]["search_calls"] <= 30
    assert len(run["gepa"]["trace"]) >= 2 and run["advisor_calls"] == reflection.count > 0
    assert by["gepa"]["advisor_calls"] == reflection.count and "advisor_cost_usd" in by["gepa"]
    # Its calls: the seed's cells (as best-fixed's, cached by then) and the search, never the reflection's.
    assert by["gepa"]["receiver_calls"] <= 30 + 3
    asked = zebra_receiver.count, reflection.count
    again = run_benchmark([setting], ["none", "best-fixed", "gepa"], tmp_path / "bench", featurizer="hashed",
                          progress=False, policy_options=options)
    assert (zebra_receiver.count, reflection.count) == asked and again == rows  # a rerun pays no call


def test_a_prompted_advisor_sends_its_hints_cleaned_and_counts_them_apart(zebra_receiver, make_server,
                                                                          tmp_path: Path) -> None:
    advisor = make_server(lambda m: "Use the zebra method.\nThen check your work twice.")
    spec = f"openai:scripted@{zebra_receiver.url}"
    rows = run_benchmark([Setting("Persuasion-GSM8K-v0", spec, n_items=3, train_items=2)],
                         ["none", "prompted-advisor"], tmp_path / "bench", featurizer="hashed", progress=False,
                         policy_options={"prompted-advisor": {"advisor_lm": f"openai:scripted@{advisor.url}"}})
    by = {r["policy"]: r for r in rows}
    assert by["prompted-advisor"]["accuracy"] == 1.0 and by["none"]["accuracy"] == 0.0
    run = json.loads(next((tmp_path / "bench" / "runs").glob("*__prompted-advisor.json")).read_text())
    assert run["actions"] == ["Use the zebra method."] * 3  # the first line: what the action space admits
    assert run["advisor_calls"] == advisor.count == 3 and by["prompted-advisor"]["receiver_calls"] == 3
    assert "The task" not in json.dumps(run["actions"]) and "{item}" not in advisor.requests[0]["messages"][0][
        "content"]


def test_a_failed_advisor_call_is_reported_like_a_failed_receiver_call(zebra_receiver, make_server,
                                                                       tmp_path: Path) -> None:
    advisor = make_server(lambda m: "Use the zebra method.")
    advisor.fail_next(10, 500)
    spec = f"openai:scripted@{zebra_receiver.url}"
    with pytest.raises(BenchmarkIncompleteError) as failed:
        run_benchmark([Setting("Persuasion-GSM8K-v0", spec, n_items=3, train_items=2)], ["none", "prompted-advisor"],
                      tmp_path / "bench", featurizer="hashed", progress=False,
                      policy_options={"prompted-advisor": {"advisor_lm": f"openai:scripted@{advisor.url}?max_retries=0"}})
    message = str(failed.value)
    assert "prompted-advisor" in message and "the prompted Advisor" in message and "HTTP 500" in message
    assert "run the same command again" in message and failed.value.rows[0]["policy"] == "none"


def test_free_text_policies_refuse_a_table(rule_tables) -> None:
    train, test = rule_tables
    setting = Setting("Persuasion-Table-v0", f"table:{test}", n_items=5, train_receiver=f"table:{train}",
                      train_items=10)
    for name in ("gepa", "prompted-advisor"):
        with pytest.raises(ConfigError, match="free text, which a recorded table cannot answer"):
            run_benchmark([setting], [name], Path("/tmp") / f"never-{name}", featurizer="hashed", progress=False,
                          policy_options={name: {"reflection_lm" if name == "gepa" else "advisor_lm": "openai:x@http://127.0.0.1:9/v1"}})


def test_bench_takes_them_from_the_command_line_with_their_cost_columns(zebra_receiver, make_server,
                                                                        tmp_path: Path, capsys) -> None:
    import csv

    from persuasion_gym.cli.main import main

    helper = make_server(lambda m: "```\nTry the zebra method.\n```")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Write a hint for: {item}")
    assert main(["bench", "--receiver", f"openai:scripted@{zebra_receiver.url}", "--policies",
                 "none, gepa, prompted-advisor", "--reflection-lm", f"openai:scripted@{helper.url}",
                 "--advisor-lm", f"openai:scripted@{helper.url}", "--advisor-prompt", str(prompt), "--budget", "30",
                 "--n-items", "3", "--train-items", "4", "--featurizer", "hashed", "--out", str(tmp_path / "b")]) == 0
    rows = {r["policy"]: r for r in csv.DictReader(open(tmp_path / "b" / "results.csv"))}
    assert float(rows["gepa"]["accuracy"]) == 1.0 and int(rows["gepa"]["advisor_calls"]) > 0
    assert int(rows["prompted-advisor"]["advisor_calls"]) == 3 and rows["none"]["advisor_calls"] == ""
    assert any(r["messages"][0]["content"].startswith("Write a hint for: ") for r in helper.requests)
    assert "its own model made" in (tmp_path / "b" / "results.md").read_text()


def test_compare_adds_them_as_arms(zebra_receiver, make_server, tmp_path: Path) -> None:
    from testkit import build_tiny_advisor

    from persuasion_agents.lm_advisor import LMAdvisor
    from persuasion_agents.lm_advisor.compare import paper_comparison

    advisor = LMAdvisor.load(str(build_tiny_advisor(tmp_path / "tiny")))
    advisor.info.trained_on = {"protocol": "direct", "steps": 0}  # serve both arms as it is: no training here
    helper = make_server(lambda m: "```\nUse the zebra method.\n```")
    spec = f"openai:scripted@{helper.url}"
    rows = {r["policy"]: r for r in paper_comparison(
        "Persuasion-GSM8K-v0", f"openai:scripted@{zebra_receiver.url}", advisor, tmp_path / "paper", n_items=3,
        train_items=4, progress=False, arms=["gepa", "prompted-advisor"],
        arm_options={"gepa": {"reflection_lm": spec, "budget": 30}, "prompted-advisor": {"advisor_lm": spec}})}
    assert rows["gepa"]["accuracy"] == 1.0 and rows["prompted-advisor"]["accuracy"] == 1.0
    assert rows["best-fixed"]["accuracy"] == 0.0 and rows["gepa"]["advisor_calls"] > 0
    saved = json.loads((tmp_path / "paper" / "results.json").read_text())
    assert {"gepa", "prompted-advisor"} <= {r["policy"] for r in saved["rows"]}
    assert (tmp_path / "paper" / "gepa" / "result.json").is_file()
