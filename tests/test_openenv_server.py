"""``persuasion-gym serve``: a persuasion env as an OpenEnv environment, in a process of its own on
127.0.0.1, driven by OpenEnv's own clients (the typed ``EnvClient`` subclass and
``GenericEnvClient``), against the scripted loopback Receiver with latency."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("openenv.core.env_server", reason="needs the [openenv] extra and openenv-core (see README)")

import testkit  # noqa: E402
from testkit import advice_of, question_of  # noqa: E402
from openenv.core.generic_client import GenericEnvClient  # noqa: E402

from persuasion_gym.cli.main import main  # noqa: E402
from persuasion_gym.receivers import ResponseCache  # noqa: E402
from persuasion_gym.serving.openenv import (  # noqa: E402
    PersuasionAction,
    PersuasionEnvClient,
    PersuasionEnvironment,
)
from persuasion_gym.serving.sessions import SharedEnv  # noqa: E402
from persuasion_gym.signals import MATH_SIGNALS  # noqa: E402
from persuasion_gym.tasks import GSM8KTask  # noqa: E402

STEP = MATH_SIGNALS[1]  # "Think step by step: ...": the scripted Receiver answers right only with it


@pytest.fixture
def receiver(make_server, gold_by_question) -> Callable[..., object]:
    """A scripted Receiver with latency: right exactly when the advice says to think step by step."""
    def reply(messages: list[dict[str, str]]) -> str:
        return f"The answer is {gold_by_question[question_of(messages)] if 'step' in advice_of(messages) else -1}."

    def start(latency_s: float = 0.05):
        return make_server(reply, latency_s=latency_s)
    return start


@contextmanager
def served(url: str, *flags: str, max_concurrency: int = 64) -> Iterator[tuple[str, subprocess.Popen]]:
    """``persuasion-gym serve`` on a free port of 127.0.0.1 (its cache: the test's), until the block ends."""
    log = open(Path(os.environ["PERSUASION_GYM_CACHE_DIR"]).parent / f"serve-{time.monotonic_ns()}.log", "w+")
    command = [sys.executable, "-m", "persuasion_gym", "serve", "--receiver",
               f"openai:scripted@{url}?max_concurrency={max_concurrency}", "--split", "test", "--n-items", "40",
               "--port", "0", *flags]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            log.seek(0)
            pytest.fail(f"the server did not start: {log.read()}")
        yield line.split(" at ", 1)[1].split()[0], server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        log.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_reset_and_step_with_text_and_index_actions(receiver):
    scripted = receiver()
    with served(scripted.url) as (url, _):
        with PersuasionEnvClient(base_url=url).sync() as client:
            # A seed draws the item the single Gymnasium env's seeded reset draws.
            local = gym.make("Persuasion-GSM8K-v0", split="test", max_items=40, observation="text",
                             receiver=f"openai:scripted@{scripted.url}")
            _, expected = local.reset(seed=7)
            local.close()
            first = client.reset(seed=7)
            assert (first.observation.item_index, first.observation.item_id) == (expected["item_index"],
                                                                                expected["item_id"])
            assert first.observation.item_text == expected["question"] and not first.done and first.reward is None
            assert "gold" not in first.observation.info  # the answer comes with the step, not with the item

            text = client.step(STEP)  # a text action
            assert (text.reward, text.done, text.observation.correct) == (1.0, True, True)
            assert text.observation.signal == STEP and text.observation.answer == expected["gold"]
            assert text.observation.response == f"The answer is {expected['gold']}."
            assert text.observation.metadata["gold"] == expected["gold"] and text.observation.info["cached"] is False

            state = client.state()
            assert (state.env_id, state.n_items, state.action_type, state.step_count, state.done) == (
                "Persuasion-GSM8K-v0", 40, "text", 1, True)
            assert state.signals == list(MATH_SIGNALS) and state.item_id == expected["item_id"]

            client.reset(item_id="gsm8k/test/3")  # an item named by its id
            index = client.step(PersuasionAction(index=2))  # an index action: the library's signal 2
            assert index.observation.item_id == "gsm8k/test/3" and index.observation.signal == MATH_SIGNALS[2]
            assert (index.reward, index.observation.answer) == (0.0, "-1")

        # OpenEnv's generic client, which needs nothing of this package: plain dicts.
        with GenericEnvClient(base_url=url).sync() as generic:
            reset = generic.reset(item_index=3)
            assert reset.observation["item_id"] == "gsm8k/test/3"
            step = generic.step({"signal": MATH_SIGNALS[2]})
            assert step.reward == 0.0 and step.observation["info"]["cached"] is True  # the same cell as above
    assert scripted.count == 2


def cells(n: int) -> list[tuple[int, PersuasionAction]]:
    """Episode i asks item i mod 20 with signal i mod 2 (the empty one or STEP), as an index for
    the first 20 and as the same text after: 20 distinct (item, signal) cells."""
    out = []
    for i in range(n):
        k = i % 2
        action = PersuasionAction(index=k) if i < 20 else PersuasionAction(signal=MATH_SIGNALS[k])
        out.append((i % 20, action))
    return out


async def rollouts(url: str, plan: list[tuple[int, PersuasionAction]], bad: bool = False) -> dict:
    """One session per episode, all reset before any steps (as a trainer resets its group, then
    sends the completions); ``bad``: one more session sends a bad action first, then a good one."""
    clients = [PersuasionEnvClient(base_url=url) for _ in plan]
    extra = PersuasionEnvClient(base_url=url)
    try:
        for client in [*clients, extra]:
            await client.connect()
        await asyncio.gather(*(c.reset(item_index=item) for c, (item, _) in zip(clients, plan, strict=True)),
                             extra.reset(item_index=1))  # cell (1, STEP) is among the plan's

        async def misbehave():
            with pytest.raises(RuntimeError) as error:
                await extra.step("x" * 600)
            again = await extra.step(PersuasionAction(index=1))  # the episode stayed open
            return str(error.value), again

        steps = [c.step(action) for c, (_, action) in zip(clients, plan, strict=True)]
        results = await asyncio.gather(*steps, *([misbehave()] if bad else []))
        return {"results": results[:len(plan)], "bad": results[len(plan)] if bad else None}
    finally:
        for client in [*clients, extra]:
            await client.close()


def test_32_concurrent_sessions_one_receiver_call_per_cell_and_a_bad_action(receiver):
    scripted = receiver(latency_s=0.2)
    plan = cells(32)
    with served(scripted.url, "--max-sessions", "40") as (url, _):
        first = run(rollouts(url, plan, bad=True))
        # At most one Receiver call per distinct (item, signal): 20, whatever the batches.
        assert scripted.count == 20
        for (item, action), result in zip(plan, first["results"], strict=True):
            k = action.index if action.index is not None else MATH_SIGNALS.index(action.signal)
            assert result.done and result.observation.item_index == item
            assert result.reward == (1.0 if k == 1 else 0.0)
        # Steps that arrive together are one batch, asked of the Receiver concurrently.
        sizes = [r.observation.info["batch_size"] for r in first["results"]]
        assert max(sizes) >= 8 and scripted.max_in_flight >= 8, (sizes, scripted.max_in_flight)
        # The bad action got OpenEnv's error shape with the Gymnasium env's message; the session went on.
        message, again = first["bad"]
        assert "signal of 600 characters is over this env's limit of 512" in message and "EXECUTION_ERROR" in message
        assert again.reward == 1.0

        second = run(rollouts(url, plan))  # served from the cache
        assert scripted.count == 20
        assert all(r.observation.info["cached"] for r in second["results"])
        assert [r.reward for r in second["results"]] == [r.reward for r in first["results"]]
        with PersuasionEnvClient(base_url=url).sync() as client:
            client.reset(seed=0)
            state = client.state()
        assert state.receiver_calls == 20 and state.largest_batch == max(sizes)


def test_a_killed_server_loses_nothing_the_cache_holds(receiver):
    scripted = receiver(latency_s=0.3)
    plan = cells(20)  # 20 distinct cells, asked 4 at a time: 5 rounds of 0.3 s
    cache = ResponseCache(Path(os.environ["PERSUASION_GYM_CACHE_DIR"]) / "responses.sqlite")
    with served(scripted.url, max_concurrency=4) as (url, server):
        async def kill_mid_batch():
            rollout = asyncio.ensure_future(rollouts(url, plan))
            while len(cache) < 4 and not rollout.done():
                await asyncio.sleep(0.02)
            server.send_signal(signal.SIGKILL)
            with pytest.raises(Exception):  # noqa: B017  (the connection dies: websockets' error)
                await rollout
        run(kill_mid_batch())
        server.wait(timeout=30)
    kept, asked = len(cache), scripted.count
    assert 4 <= kept < 20 and asked <= kept + 4  # at most the requests in flight were lost
    with served(scripted.url, max_concurrency=4) as (url, _):
        again = run(rollouts(url, plan))
    assert scripted.count - asked == 20 - kept  # only what the cache did not hold was asked again
    assert sum(r.observation.info["cached"] for r in again["results"]) == kept


def test_an_index_action_env_takes_indices_and_says_why_not_texts(tmp_path):
    dataset = GSM8KTask().load("test", max_items=6)
    scores = np.zeros((6, 3, 1), np.float32)
    scores[:, 2, 0] = 1
    path = tmp_path / "t.npz"
    testkit.synthetic_table(dataset, ["", "one", "two"], scores).save(path)
    shared = SharedEnv.make("Persuasion-Table-v0", {"table": str(path)}, window_s=0.0)
    try:
        session = PersuasionEnvironment(shared)
        observation = session.reset(item_index=4)
        assert observation.item_id == dataset.items[4].item_id and session.state.action_type == "index"
        with pytest.raises(ValueError, match="action 'two' is text: actions are signal indices"):
            session.step(PersuasionAction(signal="two"))
        done = session.step(PersuasionAction(index=2))
        assert (done.reward, done.done, done.signal, done.info["cached"]) == (1.0, True, "two", True)
        session.close()
    finally:
        shared.close()


@pytest.mark.parametrize("argv, message", [
    (["--env", "Persuasion-Prosecutor-v0"], "a classic game has no task items"),
    (["--env", "Persuasion-Table-v0"], "needs --table PATH"),
    (["--env-arg", "max_signal_length"], "write KEY=VALUE"),
    (["--table", "t.npz"], "--table is for --env Persuasion-Table-v0"),
])
def test_serve_says_what_it_cannot_serve(argv, message, capsys):
    assert main(["serve", "--receiver", "openai:x@http://127.0.0.1:9/v1", *argv]) == 2
    assert message in capsys.readouterr().err
