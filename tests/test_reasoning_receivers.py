"""Reasoning models as Receivers: the parameters they take, their thinking kept apart from the
answer, cut-off answers counted, reasoning tokens billed, and client-side rate limits; against
the loopback server behaving like each kind of server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import gymnasium as gym
import pytest

import persuasion_gym  # noqa: F401  (registers the envs)
from persuasion_gym.errors import ReceiverConfigError
from persuasion_gym.receivers import make_receiver
from persuasion_gym.receivers.cache import ResponseCache
from persuasion_gym.receivers.reasoning import split_reasoning
from testkit import question_of


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Question: what is {i} + {i}?"}] for i in range(n)]


def test_an_openai_reasoning_model_is_sent_only_what_it_takes(make_server) -> None:
    server = make_server(lambda m: "4", model="o4-mini", reasoning_model=True)
    plain = make_receiver(f"openai:o4-mini@{server.url}", cache=False)
    assert plain.respond(prompts(1))[0].text == "4"
    assert "temperature" not in server.requests[-1] and "max_tokens" not in server.requests[-1]
    assert plain.identity["temperature"] is None and plain.identity["max_tokens"] is None
    budget = make_receiver(f"openai:o4-mini@{server.url}?max_tokens=300&reasoning_effort=low", cache=False)
    budget.respond(prompts(1))
    body = server.requests[-1]
    assert body["max_completion_tokens"] == 300 and body["reasoning_effort"] == "low" and "max_tokens" not in body
    assert budget.identity["max_completion_tokens"] == 300 and budget.identity["reasoning_effort"] == "low"
    # Other models keep greedy decoding and a 512-token budget, and the identity they had.
    other = make_server(lambda m: "4")
    classic = make_receiver(f"openai:scripted@{other.url}", cache=False)
    classic.respond(prompts(1))
    assert other.requests[-1]["temperature"] == 0.0 and other.requests[-1]["max_tokens"] == 512
    assert set(classic.legacy_identity) <= set(classic.identity) and "max_completion_tokens" not in classic.identity


def test_a_refused_parameter_is_one_error_naming_it_and_the_option(make_server) -> None:
    server = make_server(lambda m: "4", model="my-reasoner", reasoning_model=True)
    receiver = make_receiver(f"openai:my-reasoner@{server.url}?max_concurrency=4", cache=False)
    with pytest.raises(ReceiverConfigError) as refused:
        receiver.respond(prompts(40))
    message = str(refused.value)
    assert "'max_tokens'" in message and "max_completion_tokens" in message and "of 40" not in message
    assert server.count <= 8  # stopped at the first refusal, not asked 40 times
    fixed = make_receiver(f"openai:my-reasoner@{server.url}?max_tokens=none&max_completion_tokens=64", cache=False)
    with pytest.raises(ReceiverConfigError, match="'temperature'.*temperature=none"):
        fixed.respond(prompts(2))
    works = make_receiver(f"openai:my-reasoner@{server.url}?max_tokens=none&max_completion_tokens=64"
                          "&temperature=none", cache=False)
    assert [r.text for r in works.respond(prompts(3))] == ["4"] * 3


@pytest.mark.parametrize("reasoning_format", ["reasoning_content", "reasoning", "inline"])
def test_scores_come_from_the_answer_alone(make_server, gold_by_question, reasoning_format: str) -> None:
    """The thinking names a wrong number last; the answer names the gold one."""
    server = make_server(lambda m: f"So the total is {gold_by_question[question_of(m)]}.",
                         think=lambda m: "I guess the answer is 999999.", reasoning_format=reasoning_format)
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", max_items=3, featurizer="hashed")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert reward == 1.0 and info["answer"] != "999999"
    assert info["reasoning"] == "I guess the answer is 999999." and "999999" not in info["response"]
    assert info["truncated"] is False and info["usage"]["reasoning_tokens"] == 6
    env.close()


def test_a_cut_off_thought_that_names_the_gold_scores_zero_and_is_counted(make_server, gold_by_question) -> None:
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.",
                         think=lambda m: f"Perhaps {gold_by_question[question_of(m)]}, but let me check "
                                         + "again " * 50, reasoning_format="inline")
    receiver = make_receiver(f"openai:scripted@{server.url}?max_tokens=20", cache=False)
    env = gym.make("Persuasion-GSM8K-v0", receiver=receiver, max_items=3, featurizer="hashed")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert reward == 0.0 and info["truncated"] is True and info["response"] == ""
    assert info["reasoning"].startswith("Perhaps")
    assert receiver.stats.truncated == 1
    env.close()
    assert split_reasoning("<think>I guess the answer is 999999.</think>\nSo the total is 18.") == (
        "So the total is 18.", "I guess the answer is 999999.")


def test_on_truncated_error_makes_a_cut_off_answer_a_failure(make_server) -> None:
    server = make_server(lambda m: "a long answer " * 20)
    receiver = make_receiver(f"openai:scripted@{server.url}?max_tokens=5&on_truncated=error", cache=False)
    with pytest.raises(ReceiverConfigError, match="cut off by the token limit.*max_tokens="):
        receiver.respond(prompts(2))
    returned = receiver.respond(prompts(2), on_error="return")
    assert all(r.error and "cut off" in r.error and r.text == "" for r in returned)
    scored = make_receiver(f"openai:scripted@{server.url}?max_tokens=5", cache=False).respond(prompts(2))
    assert all(r.truncated and r.text == "a long answer a long" for r in scored)


def test_reasoning_tokens_are_billed_as_output_and_shown_apart(make_server) -> None:
    server = make_server(lambda m: "four", think=lambda m: "two plus two is four")
    receiver = make_receiver(f"openai:scripted@{server.url}", cache=False, price_in=1.0, price_out=10.0)
    response = receiver.respond(prompts(1))[0]
    assert response.usage.reasoning_tokens == 5 and response.usage.completion_tokens == 6
    assert receiver.stats.reasoning_tokens == 5
    assert receiver.stats.cost_usd == pytest.approx((response.usage.prompt_tokens * 1.0 + 6 * 10.0) / 1e6)


def test_the_cache_keeps_the_answer_the_thinking_and_why_it_stopped(make_server, tmp_path: Path) -> None:
    server = make_server(lambda m: "an answer cut short by the limit", think=lambda m: "short thought")
    receiver = make_receiver(f"openai:scripted@{server.url}?max_tokens=6", cache=tmp_path / "c.sqlite")
    first = receiver.respond(prompts(1))[0]
    again = receiver.respond(prompts(1))[0]
    assert again.cached and server.count == 1
    assert (again.text, again.reasoning, again.finish_reason, again.usage) == (
        first.text, "short thought", "length", first.usage)
    # A row cached before the split, holding an inline block, is read as answer and thinking.
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        conn.execute("UPDATE responses SET text = '<think>999</think>The answer is 4.', reasoning = NULL")
    old = ResponseCache(tmp_path / "c.sqlite").get_many([*_keys(tmp_path / "c.sqlite")])[0]
    assert (old.text, old.reasoning) == ("The answer is 4.", "999")


def _keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM responses")]


def test_a_client_side_rate_limit_keeps_every_request_within_the_budget(make_server) -> None:
    """20 requests per second on the server (an API budget); 40 requests at concurrency 16."""
    unpaced_server = make_server(lambda m: "ok", rate_limit=(20, 1.0))
    unpaced = make_receiver(f"openai:scripted@{unpaced_server.url}?max_retries=0", cache=False)
    failed = [r for r in unpaced.respond(prompts(40), on_error="return") if r.error]
    assert failed and unpaced_server.refused > 0  # the budget is real: unpaced, requests are refused

    server = make_server(lambda m: "ok", rate_limit=(20, 1.0))
    paced = make_receiver(f"openai:scripted@{server.url}?max_retries=0&rpm=1200", cache=False)
    began = time.monotonic()
    assert [r.text for r in paced.respond(prompts(40))] == ["ok"] * 40
    assert server.refused == 0 and time.monotonic() - began >= 1.9  # 40 requests at 20 a second


def test_a_token_budget_paces_requests_by_their_size(make_server) -> None:
    """Three requests estimated at 54 tokens do not fit in 160 tokens a minute: the third
    waits for the window, and settling an estimate to what was used makes room."""
    import asyncio

    from persuasion_gym.receivers.openai_compat import _Pacer

    async def admitted(pacer: _Pacer, n: int, within: float) -> int:
        tasks = [asyncio.ensure_future(pacer.wait(54)) for _ in range(n)]
        await asyncio.sleep(within)
        for task in tasks:
            task.cancel()
        return sum(t.done() and not t.cancelled() for t in tasks)

    pacer = _Pacer(None, 160)
    assert asyncio.run(admitted(pacer, 3, 0.2)) == 2
    pacer.settle(54, 5)  # the first request used 5 tokens: 113 of 160 spent, room for one more
    assert asyncio.run(admitted(pacer, 1, 0.1)) == 1
    server = make_server(lambda m: "ok")
    receiver = make_receiver(f"openai:scripted@{server.url}?max_tokens=50&tpm=160&rpm=600", cache=False)
    assert [r.text for r in receiver.respond(prompts(2))] == ["ok", "ok"]


# Qwen3's way: with thinking off, the generation prompt holds an empty thought.
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def test_a_local_model_takes_enable_thinking_and_says_when_it_stopped(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from testkit import build_tiny_advisor
    from transformers import AutoTokenizer

    from persuasion_gym.receivers import TransformersReceiver

    path = build_tiny_advisor(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = THINKING_TEMPLATE
    tokenizer.save_pretrained(path)
    default = TransformersReceiver(str(path), max_new_tokens=4, cache=False)
    off = TransformersReceiver(str(path), max_new_tokens=4, cache=False, enable_thinking=False)
    assert off.identity["enable_thinking"] is False and "enable_thinking" not in default.identity
    plain, thoughtless = default.respond(prompts(1))[0], off.respond(prompts(1))[0]
    assert thoughtless.usage.prompt_tokens > plain.usage.prompt_tokens  # the option reached the template
    for response in (plain, thoughtless):
        assert response.finish_reason == ("length" if response.usage.completion_tokens == 4 else "stop")


def test_tables_keep_thinking_and_cut_offs_and_old_tables_rescore_right(make_server, gold_by_question,
                                                                         tmp_path: Path, caplog) -> None:
    import logging

    import numpy as np

    import testkit
    from persuasion_gym.tables import load_table, record, rescore
    from persuasion_gym.tasks import GSM8KTask

    task = GSM8KTask()
    dataset = task.load("test", None, 4)
    # Thinking names 999999; the answer the gold; with advice "short" the budget cuts the thought.
    server = make_server(lambda m: f"So the total is {gold_by_question[question_of(m)]}.",
                         think=lambda m: "I guess the answer is 999999 " + "hmm " * (0 if "Advice" in
                                                                                      m[-1]["content"] else 30))
    receiver = make_receiver(f"openai:scripted@{server.url}?max_tokens=20", cache=tmp_path / "c.sqlite")
    with caplog.at_level(logging.WARNING, logger="persuasion_gym"):
        table = record(task, receiver, dataset, ["", "Think."], out=tmp_path / "t.npz", progress=False)
    assert "cut off by the token limit" in caplog.text and "max_tokens=" in caplog.text
    saved = load_table(tmp_path / "t.npz")
    assert saved.truncated[:, 0, 0].all() and not saved.truncated[:, 1, 0].any()
    assert saved.meta["truncated"] == 4 and saved.finish_reasons[0][0][0] == "length"
    assert saved.reasonings[0][1][0].startswith("I guess") and saved.scores[:, 1, 0].tolist() == [1.0] * 4
    assert int(saved.reasoning_tokens.sum()) == table.meta["usage"]["reasoning_tokens"] > 0
    env = gym.make("Persuasion-Table-v0", table=tmp_path / "t.npz", featurizer="hashed")
    env.reset(seed=0)
    assert env.step(0)[4]["truncated"] is True
    # A table recorded before the split: inline thinking in the responses, no thinking arrays.
    scores = np.ones((2, 1, 1), np.float32)
    old = testkit.synthetic_table(task.load("test", None, 2), [""], scores)
    old.responses = [[[f"<think>I guess the answer is 999999.</think>\nSo it is {old.golds[i]}."]] for i in range(2)]
    old.responses[1][0][0] = f"<think>maybe {old.golds[1]} but"  # cut off mid-thought, naming the gold
    old.save(tmp_path / "old.npz")
    before = load_table(tmp_path / "old.npz")
    assert not before.truncated.any() and before.reasonings[0][0][0] is None
    result = rescore(tmp_path / "old.npz")
    assert result.table.scores[:, 0, 0].tolist() == [1.0, 0.0]
    assert result.table.answers[0][0][0] == old.golds[0] and result.table.truncated[1, 0, 0]
    assert result.table.responses[0][0][0] == f"So it is {old.golds[0]}."


def test_bench_counts_what_fitting_cost_and_what_was_cut_off(make_server, gold_by_question, tmp_path: Path) -> None:
    import json

    from persuasion_agents.benchmark import Setting, run_benchmark

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.",
                         think=lambda m: "let me think " * (10 if "Advice" in m[-1]["content"] else 1))
    spec = f"openai:scripted@{server.url}?max_tokens=20"
    rows = run_benchmark([Setting("Persuasion-GSM8K-v0", spec, n_items=3, train_items=4)],
                         ["none", "best-fixed", "oracle", "fixed-1"], tmp_path / "bench", featurizer="hashed", progress=False)
    by = {r["policy"]: r for r in rows}
    signals = len(json.loads((tmp_path / "bench" / "results.json").read_text())["provenance"][
        f"Persuasion-GSM8K-v0|{spec}"]["signals"])
    # best-fixed asked every training cell (4 items x the library), the oracle every held-out one.
    assert by["best-fixed"]["receiver_calls"] >= 4 * signals
    assert by["oracle"]["receiver_calls"] >= 3 * (signals - 1)
    assert by["none"]["truncated"] == 0 and by["none"]["reasoning_tokens"] == 3 * 3
    assert by["oracle"]["truncated"] == 0 and by["fixed-1"]["truncated"] == 3  # advice makes it think past 20
    assert by["fixed-1"]["receiver_calls"] == 0  # the oracle asked those cells already: served from the cache
    assert "cut off" in (tmp_path / "bench" / "results.md").read_text()
