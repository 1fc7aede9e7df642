"""Spending is visible before it happens: record, bench, train and compare print their plan
(calls per stage, what the cache holds, tokens, cost) and refuse one past --max-calls before
the first call; the cap holds while a command runs too."""

from __future__ import annotations

from pathlib import Path

import pytest

from persuasion_gym.cli.main import main
from persuasion_gym.receivers import make_receiver
from persuasion_gym.receivers.budget import CallBudgetError, limit_calls


def test_a_recording_past_max_calls_asks_nothing_and_a_plan_shows_what_the_cache_holds(make_server, tmp_path: Path,
                                                                                       capsys) -> None:
    server = make_server(lambda m: "The answer is 3.")
    spec = f"openai:scripted@{server.url}?max_tokens=64"
    common = ["record", "--receiver", spec, "--n-items", "3", "--out", str(tmp_path / "t.npz")]
    assert main([*common, "--max-calls", "10", "--price-in", "1", "--price-out", "2"]) == 2
    err = capsys.readouterr().err
    assert server.count == 0 and "--max-calls 10" in err and "nothing was asked" in err
    assert "30 new Receiver calls" in err and "$" in err  # 3 items x 10 signals, priced
    assert main([*common, "--max-calls", "30"]) == 0
    assert server.count == 30
    assert main([*common, "--max-calls", "1"]) == 0  # all cached: nothing new to cap
    err = capsys.readouterr().err
    assert "0 new Receiver calls (30 more answered by the cache)" in err and server.count == 30


def test_a_bench_whose_plan_passes_max_calls_stops_before_its_first_call(make_server, tmp_path: Path,
                                                                         capsys) -> None:
    server = make_server(lambda m: "The answer is 3.")
    args = ["bench", "--receiver", f"openai:scripted@{server.url}", "--policies", "none,best-fixed,oracle,ucb",
            "--n-items", "4", "--featurizer", "hashed", "--timesteps", "50", "--out", str(tmp_path / "b")]
    assert main([*args, "--max-calls", "500"]) == 2
    err = capsys.readouterr().err
    assert server.count == 0 and "--max-calls 500" in err
    # Training items default to 200 on a live Receiver: best-fixed's cells say so.
    assert "best-fixed: every training cell  2,000 requests" in err and "ucb: training (50 episodes)" in err
    assert "oracle: every held-out cell" in err and not (tmp_path / "b" / "runs").exists()
    assert main([*args, "--train-items", "3", "--max-calls", "500"]) == 0
    assert 0 < server.count <= 30 + 40 + 4 * 4


def test_train_and_compare_print_their_plans_and_keep_to_the_cap(make_server, tmp_path: Path, capsys) -> None:
    server = make_server(lambda m: "The answer is 3.")
    spec = f"openai:scripted@{server.url}"
    assert main(["train", "--algo", "ucb", "--receiver", spec, "--timesteps", "300", "--eval-items", "2",
                 "--featurizer", "hashed", "--out", str(tmp_path / "t"), "--max-calls", "100"]) == 2
    err = capsys.readouterr().err
    assert "ucb: training (300 episodes)" in err and server.count == 0 and "--max-calls 100" in err
    assert main(["compare", "--receiver", spec, "--n-items", "2", "--train-items", "2", "--steps", "1",
                 "--out", str(tmp_path / "c"), "--max-calls", "30"]) == 2
    err = capsys.readouterr().err
    assert "held-out cells" in err and "lm-advisor (posterior): training (1 GRPO steps)" in err and server.count == 0


def test_the_cap_holds_while_running(make_server) -> None:
    server = make_server(lambda m: "ok")
    receiver = make_receiver(f"openai:scripted@{server.url}", cache=False)
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]
    with limit_calls(15):
        receiver.respond(prompts)
        with pytest.raises(CallBudgetError, match="--max-calls 15 .10 made so far.*higher --max-calls"):
            receiver.respond(prompts)
    assert server.count == 10
    receiver.respond(prompts)  # outside the command: no cap
    assert server.count == 20


def test_a_stages_spending_counts_only_what_came_after_whatever_was_collected(make_server) -> None:
    import gc

    from persuasion_gym.receivers.base import spending

    server = make_server(lambda m: "ok")
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
    gone = make_receiver(f"openai:scripted@{server.url}", cache=False)
    gone.respond(prompts)
    before = spending()
    del gone
    gc.collect()  # a Receiver of an earlier stage, collected: its calls are not this stage's, nor negative
    stays = make_receiver(f"openai:scripted@{server.url}", cache=False)
    stays.respond(prompts[:3])
    assert spending(before).calls == 3
