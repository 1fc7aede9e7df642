import multiprocessing as mp

import pytest

from persuasion_gym.receivers import OpenAIReceiver, Receiver, ResponseCache


def prompt(text):
    return [{"role": "user", "content": text}]


def test_second_identical_run_makes_no_calls(make_server, tmp_path):
    server = make_server()
    path = tmp_path / "r.sqlite"
    first = OpenAIReceiver(base_url=server.url, cache=path).respond([prompt(f"q{i}") for i in range(10)])
    assert server.count == 10 and not any(r.cached for r in first)
    again = OpenAIReceiver(base_url=server.url, cache=path)
    second = again.respond([prompt(f"q{i}") for i in range(10)])
    assert server.count == 10, "the second run must be served from the cache"
    assert all(r.cached for r in second)
    assert [(r.text, r.usage, r.latency_s) for r in second] == [(r.text, r.usage, r.latency_s) for r in first]
    assert again.stats.calls == 0 and again.stats.cache_hits == 10


def test_key_covers_sample_and_decoding_parameters(make_server, tmp_path):
    server = make_server()
    path = tmp_path / "r.sqlite"
    OpenAIReceiver(base_url=server.url, cache=path).respond([prompt("a")], samples=[0])
    OpenAIReceiver(base_url=server.url, cache=path).respond([prompt("a")], samples=[1])
    OpenAIReceiver(base_url=server.url, temperature=1.0, cache=path).respond([prompt("a")])
    OpenAIReceiver(base_url=server.url, cache=path).respond([[{"role": "system", "content": "s"}, *prompt("a")]])
    assert server.count == 4


def test_duplicates_in_a_batch_are_generated_once(make_server):
    server = make_server()
    out = OpenAIReceiver(base_url=server.url, cache=False).respond([prompt("a"), prompt("a"), prompt("b")])
    assert [r.text for r in out] == ["You said: a", "You said: a", "You said: b"]
    assert server.count == 2


def _write(path: str, worker: int, start) -> None:
    from persuasion_gym.receivers import Request, Response, Usage

    cache = ResponseCache(path)
    start.wait()  # every process opens the new file at the same moment
    for i in range(50):
        cache.put_many("{}", [(f"{worker}-{i}", Request(prompt(f"{worker}-{i}")), Response(f"t{i}", Usage(1, 2), 0.1))])


def test_several_processes_write_one_cache(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(6)
    workers = [ctx.Process(target=_write, args=(path, w, start)) for w in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    cache = ResponseCache(path)
    assert len(cache) == 300
    hit = cache.get_many(["3-49", "missing"])
    assert hit[0].text == "t49" and hit[0].usage.completion_tokens == 2 and hit[1] is None


def test_a_receiver_written_against_the_private_method_is_told_to_rename_it():
    with pytest.raises(TypeError, match=r"OldReceiver defines _generate: .* now generate\(requests\).*rename it"):
        class OldReceiver(Receiver):
            identity = {"kind": "old"}

            def _generate(self, requests):
                yield from ()
