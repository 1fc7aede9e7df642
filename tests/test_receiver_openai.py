"""The OpenAI-compatible Receiver, through the real openai SDK, against a real loopback server."""

import logging
import pickle
import time

import pytest

from persuasion_gym.errors import ConfigError, ReceiverError, ReceiverUnavailableError
from persuasion_gym.receivers import OpenAIReceiver, make_receiver, parse_spec
from persuasion_gym.receivers.cache import ResponseCache

from testkit import free_port


def prompt(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]



def test_batch_is_concurrent_under_the_limit(make_server):
    server = make_server(latency_s=0.15)
    receiver = OpenAIReceiver(base_url=server.url, max_concurrency=6, cache=False)
    responses = receiver.respond([prompt(f"q{i}") for i in range(24)])
    assert [r.text for r in responses] == [f"You said: q{i}" for i in range(24)]
    assert server.count == 24
    assert 3 <= server.max_in_flight <= 6
    assert responses[0].usage.prompt_tokens == 1 and responses[0].usage.completion_tokens == 3
    assert all(r.latency_s >= 0.15 for r in responses)
    assert receiver.stats.calls == 24


class SlowCache(ResponseCache):
    """A real cache whose writes are slow and which notes how many requests the server had
    received, and how many answers it held, at each write."""

    def __init__(self, path, server):
        super().__init__(path)
        self.server, self.seen = server, []

    def put_many(self, identity_json, entries):
        self.seen.append((self.server.count, len(self)))
        time.sleep(0.1)
        super().put_many(identity_json, entries)


def test_a_slot_is_freed_only_once_its_answer_is_stored(make_server, tmp_path):
    # A kill at any moment then loses at most max_concurrency paid answers, however slow the
    # caller's writes are.
    server = make_server()
    cache = SlowCache(tmp_path / "c.sqlite", server)
    receiver = OpenAIReceiver(base_url=server.url, max_concurrency=3, cache=cache)
    receiver.respond([prompt(f"q{i}") for i in range(12)])
    assert len(cache) == 12 and len(cache.seen) == 12
    assert max(received - stored for received, stored in cache.seen) <= 3


def test_decoding_parameters_and_seed_per_sample_reach_the_server(make_server):
    server = make_server()
    receiver = OpenAIReceiver(model="scripted", base_url=server.url, temperature=0.7, max_tokens=64,
                              top_p=0.9, seed=7, cache=False)
    receiver.respond([prompt("a"), prompt("a")], samples=[0, 3])
    bodies = sorted(server.requests, key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [7, 10]
    assert bodies[0]["temperature"] == 0.7 and bodies[0]["max_tokens"] == 64 and bodies[0]["top_p"] == 0.9
    assert receiver.identity == {"kind": "openai", "model": "scripted", "temperature": 0.7,
                                 "max_tokens": 64, "top_p": 0.9, "seed": 7, "endpoint": server.url,
                                 "server": {"owned_by": "persuasion-gym"}}


def test_model_is_discovered_from_the_server(make_server):
    server = make_server(model="served-model")
    assert OpenAIReceiver(base_url=server.url, cache=False).model == "served-model"


@pytest.mark.parametrize("fault", [429, 500, 503, "drop"])
def test_transient_faults_are_retried(make_server, fault):
    server = make_server()
    receiver = OpenAIReceiver(model="scripted", base_url=server.url, max_retries=3, cache=False)
    server.fail_next(2, fault)
    assert receiver.respond([prompt("x")])[0].text == "You said: x"
    assert server.count == 3


def test_persistent_failure_is_a_clear_error_and_good_answers_survive(make_server, tmp_path):
    server = make_server()
    receiver = OpenAIReceiver(model="scripted", base_url=server.url, max_retries=1,
                              max_concurrency=1, cache=tmp_path / "c.sqlite")
    receiver.respond([prompt("ok")])
    server.fail_next(10, 500)
    with pytest.raises(ReceiverError, match=r"HTTP 500 after 1 retries"):
        receiver.respond([prompt("bad")])
    returned = receiver.respond([prompt("bad"), prompt("ok")], on_error="return")
    assert returned[0].error and returned[0].text == "" and not returned[1].error
    assert returned[1].cached
    assert len(receiver.cache) == 1  # failures are never cached


def test_unreachable_endpoint(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ReceiverUnavailableError, match=r"cannot reach the Receiver at .*is the server running"):
        OpenAIReceiver(base_url=url, max_retries=0, cache=False)
    receiver = OpenAIReceiver(model="m", base_url=url, max_retries=1, cache=False)
    with pytest.raises(ReceiverUnavailableError, match=url.replace(".", r"\.")):
        receiver.respond([prompt("x")])


def test_timeout(make_server):
    server = make_server()
    receiver = OpenAIReceiver(model="scripted", base_url=server.url, timeout=0.5, max_retries=0, cache=False)
    server.fail_next(1, "hang")
    with pytest.raises(ReceiverUnavailableError, match=r"did not answer within 0.5 s"):
        receiver.respond([prompt("x")])


def test_unknown_model_and_ambiguous_discovery(make_server):
    server = make_server()
    receiver = OpenAIReceiver(model="nope", base_url=server.url, max_retries=0, cache=False)
    with pytest.raises(ReceiverError, match="404.*check the model name"):
        receiver.respond([prompt("x")])


def test_missing_and_rejected_keys_never_leak(make_server, monkeypatch, caplog, tmp_path):
    with pytest.raises(ReceiverUnavailableError, match="missing API key.*OPENAI_API_KEY"):
        OpenAIReceiver(model="gpt-4o-mini")
    secret = "sk-test-VERYSECRET123"
    server = make_server(api_key=secret)
    caplog.set_level(logging.DEBUG)
    good = OpenAIReceiver(base_url=server.url, api_key=secret, cache=tmp_path / "c.sqlite")
    assert good.respond([prompt("x")])[0].text == "You said: x"
    wrong = "sk-wrong-OTHERSECRET999"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    bad = OpenAIReceiver(model="scripted", base_url=server.url, max_retries=0, cache=False)
    with pytest.raises(ReceiverUnavailableError, match="rejected the API key") as excinfo:
        bad.respond([prompt("y")])
    shown = [str(excinfo.value), repr(excinfo.value), repr(good), repr(bad), good.identity_json,
             caplog.text, (tmp_path / "c.sqlite").read_bytes().decode("latin-1")]
    for text in shown:
        assert "VERYSECRET123" not in text and "OTHERSECRET999" not in text


def test_receiver_pickles_and_works_in_the_copy(make_server):
    server = make_server()
    receiver = OpenAIReceiver(base_url=server.url, cache=False)
    receiver.respond([prompt("before")])
    clone = pickle.loads(pickle.dumps(receiver))
    assert clone.respond([prompt("after")])[0].text == "You said: after"
    receiver.close()
    clone.close()


def test_specs():
    assert parse_spec("openai:m@http://127.0.0.1:8000/v1") == ("openai", {"model": "m", "base_url": "http://127.0.0.1:8000/v1"})
    assert parse_spec("openai:org/m") == ("openai", {"model": "org/m"})
    assert parse_spec("openai:@http://h:1/v1?temperature=0.5&seed=3&max_tokens=9") == (
        "openai", {"base_url": "http://h:1/v1", "temperature": 0.5, "seed": 3, "max_tokens": 9})
    with pytest.raises(ConfigError, match="unknown receiver spec 'gpt4'.*openai:MODEL@URL"):
        parse_spec("gpt4")
    with pytest.raises(ConfigError, match="must start with http"):
        parse_spec("openai:m@localhost:8000")
    with pytest.raises(ConfigError, match="bad option 'api_key=x'"):
        parse_spec("openai:m?api_key=x")
    with pytest.raises(ConfigError, match="is a int"):
        make_receiver(42)


def test_auto_reads_the_environment(make_server, monkeypatch):
    server = make_server(model="env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    assert make_receiver("auto", cache=False).model == "env-model"
    monkeypatch.setenv("PERSUASION_GYM_RECEIVER", f"openai:env-model@{server.url}?temperature=0.3")
    assert make_receiver("auto", cache=False).temperature == 0.3


def test_the_server_in_its_own_process_answers_and_stops():
    from persuasion_gym.testing import server_process

    with server_process(latency_s=0.05, text="The answer is 3.") as (url, process):
        receiver = OpenAIReceiver(model="scripted", base_url=url, cache=False)
        assert [r.text for r in receiver.respond([prompt("a"), prompt("b")])] == ["The answer is 3."] * 2
        receiver.close()
    assert process.poll() is not None  # stopped on exit
    with pytest.raises(ReceiverUnavailableError):
        OpenAIReceiver(model="scripted", base_url=url, max_retries=0, cache=False).respond([prompt("a")])
