"""The LM Advisor from the command line: train against one Receiver, bench and compare on another."""

import json

import pytest

from persuasion_agents.lm_advisor import LMAdvisor
from persuasion_gym.cli.main import main
from persuasion_gym.tasks import GSM8KTask

from testkit import advice_of, build_tiny_advisor, question_of

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture
def two_receivers(make_server, gold_by_question):
    """Two scripted Receivers (different models) that are right when the advice asks a question."""
    def reply(m):
        return f"The answer is {gold_by_question[question_of(m)] if '?' in advice_of(m) else -1}."
    return make_server(reply, model="alpha"), make_server(reply, model="beta")


def test_train_then_bench_and_compare_on_another_receiver(two_receivers, tmp_path, capsys):
    alpha, beta = two_receivers
    tiny = build_tiny_advisor(tmp_path / "tiny")
    run = tmp_path / "run"
    assert main(["train", "--algo", "lm-advisor", "--advisor", str(tiny), "--receiver", f"openai:alpha@{alpha.url}",
                 "--n-items", "16", "--steps", "4", "--num-generations", "4", "--learning-rate", "1e-3",
                 "--save-steps", "2", "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "before:" in printed and "after:" in printed and '"steps": 4' in printed
    assert (run / "advisor" / "advisor.json").is_file() and (run / "checkpoint-4").is_dir()
    assert list((run / "runs").rglob("events.out.tfevents*"))  # TensorBoard
    assert alpha.count > 0 and beta.count == 0

    assert main(["train", "--algo", "lm-advisor", "--advisor", str(tiny), "--receiver", f"openai:alpha@{alpha.url}",
                 "--n-items", "16", "--steps", "6", "--num-generations", "4", "--save-steps", "2", "--out", str(run),
                 "--resume"]) == 0
    assert '"resumed_from"' in capsys.readouterr().out
    assert LMAdvisor.load(str(run / "advisor")).info.trained_on["steps"] == 6

    bench = tmp_path / "bench"
    assert main(["bench", "--env", "Persuasion-GSM8K-v0", "--receiver", f"openai:beta@{beta.url}",
                 "--policies", "none,best-fixed,oracle,lm-advisor", "--advisor", str(run / "advisor"),
                 "--n-items", "6", "--train-items", "6", "--featurizer", "hashed", "--out", str(bench)]) == 0
    results = json.loads((bench / "results.json").read_text())
    row = next(r for r in results["rows"] if r["policy"] == "lm-advisor")
    assert json.loads(row["trained_on"])["model"] == "alpha" and "beta" in row["receiver"]
    signals = json.loads(next((bench / "runs").glob("*lm-advisor.json")).read_text())["actions"]
    assert row["accuracy"] == pytest.approx(sum("?" in s for s in signals) / 6)  # its texts were what beta read
    assert "trained against" in (bench / "results.md").read_text()

    compare = tmp_path / "compare"
    assert main(["compare", "--advisor", str(run / "advisor"), "--receiver", f"openai:beta@{beta.url}",
                 "--n-items", "6", "--train-items", "6", "--out", str(compare)]) == 0
    printed = capsys.readouterr().out
    assert "relative to none" in printed
    rows = {r["policy"]: r for r in json.loads((compare / "results.json").read_text())["rows"]}
    assert set(rows) == {"none", "prior", "best-fixed", "oracle", "direct (lm-advisor)", "posterior (lm-advisor)"}
    assert rows["none"]["accuracy"] == 0.0  # no question mark in an empty advice
    assert rows["oracle"]["accuracy"] >= rows["best-fixed"]["accuracy"]
    assert json.loads(rows["posterior (lm-advisor)"]["trained_on"])["model"] == "alpha"
    calls = beta.count
    assert main(["compare", "--advisor", str(run / "advisor"), "--receiver", f"openai:beta@{beta.url}",
                 "--n-items", "6", "--train-items", "6", "--out", str(compare)]) == 0
    assert beta.count == calls  # a rerun is served from the cache


def test_lm_advisor_cli_errors(two_receivers, tmp_path, capsys):
    alpha, _ = two_receivers
    assert main(["train", "--algo", "lm-advisor", "--advisor", str(tmp_path / "nothing"), "--receiver",
                 f"openai:alpha@{alpha.url}", "--out", str(tmp_path / "o")]) == 2
    assert "no model directory" in capsys.readouterr().err
    table = tmp_path / "t.npz"
    assert main(["record", "--receiver", f"openai:alpha@{alpha.url}", "--n-items", "2", "--out", str(table)]) == 0
    tiny = build_tiny_advisor(tmp_path / "tiny")
    assert main(["bench", "--env", "Persuasion-Table-v0", "--receiver", f"table:{table}", "--train-receiver", f"table:{table}", "--policies",
                 "none,lm-advisor", "--advisor", str(tiny), "--featurizer", "hashed", "--steps", "1",
                 "--out", str(tmp_path / "b")]) == 2
    assert "text actions on a recorded table" in capsys.readouterr().err
    assert GSM8KTask().load("test", max_items=1)  # the data are there: the errors above are the Advisor's


def test_compare_trains_an_untrained_advisor_first_and_counts_what_each_arm_cost(two_receivers, tmp_path, capsys):
    alpha, _ = two_receivers
    out = tmp_path / "paper"
    command = ["compare", "--advisor", str(build_tiny_advisor(tmp_path / "tiny")),
               "--receiver", f"openai:alpha@{alpha.url}?price_in=1&price_out=2", "--n-items", "4", "--train-items", "4",
               "--steps", "2", "--num-generations", "4", "--out", str(out)]
    assert main(command) == 0
    assert "untrained: training it against this Receiver first" in capsys.readouterr().err
    assert LMAdvisor.load(str(out / "lm-advisor" / "advisor")).info.trained_on["steps"] == 2
    rows = {r["policy"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert json.loads(rows["direct (lm-advisor)"]["trained_on"])["model"] == "alpha"
    assert all(row["tokens"] > 0 for row in rows.values())
    assert rows["none"]["receiver_calls"] == 4 and rows["none"]["cost_usd"] > 0  # 4 held-out empty-signal cells
    calls = alpha.count
    assert main(command) == 0  # trained and cached: nothing is paid again
    assert alpha.count == calls
    again = {r["policy"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert all(row["receiver_calls"] == 0 and row["cost_usd"] == 0 for row in again.values())
    assert [row["tokens"] for row in again.values()] == [row["tokens"] for row in rows.values()]
