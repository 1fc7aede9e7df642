"""Receivers, recording and sandboxed runs on Ray: one local Ray for the session (the
``ray_local`` fixture), a two-node ``ray.cluster_utils.Cluster`` for a recording spread over
both nodes, against real loopback servers."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from persuasion_gym.errors import ConfigError, ReceiverUnavailableError
from persuasion_gym.receivers import make_receiver, parse_spec
from persuasion_gym.receivers.ray_replicas import RayReceiver

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(300)


TWO_NODES = """
import sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
print("ADDRESS", cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
"""


def prompts(n: int, start: int = 0) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Question: what is {i} + {i}?"}] for i in range(start, start + n)]


def double(messages: list[dict[str, str]]) -> str:
    number = int(messages[-1]["content"].split("what is ")[1].split(" +")[0])
    return f"The answer is {2 * number}."


def keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM responses")}


def test_ray_specs_split_their_options_from_the_inner_receivers() -> None:
    kind, kwargs = parse_spec("ray:openai:m@http://127.0.0.1:9/v1?replicas=3&temperature=0.5&num_cpus=0.5")
    assert kind == "ray"
    assert kwargs == {"inner": "openai:m@http://127.0.0.1:9/v1?temperature=0.5", "replicas": 3, "num_cpus": 0.5}
    kind, kwargs = parse_spec("ray:openai:m?endpoints=http://a:1/v1,http://b:2/v1")
    assert kwargs["endpoints"] == "http://a:1/v1,http://b:2/v1" and kwargs["inner"] == "openai:m"
    with pytest.raises(ConfigError, match="names no inner Receiver"):
        parse_spec("ray:")
    with pytest.raises(ConfigError, match="bad option 'colour=red'"):
        parse_spec("ray:openai:m@http://127.0.0.1:9/v1?colour=red")
    with pytest.raises(ConfigError, match="unknown receiver spec"):
        parse_spec("ray:nonsense:x")
    with pytest.raises(ConfigError, match="endpoints are for an openai"):
        RayReceiver("hf:some/model", endpoints="http://a:1/v1")
    with pytest.raises(ConfigError, match="cannot be another ray"):
        RayReceiver("ray:openai:m@http://a:1/v1")


def test_ray_receiver_gives_the_plain_receivers_answers_and_cache_keys(ray_local, make_server, tmp_path) -> None:
    server = make_server(double, latency_s=0.02)
    batch = prompts(40)
    plain = make_receiver(f"openai:scripted@{server.url}", cache=tmp_path / "plain.sqlite")
    replicated = make_receiver(f"ray:openai:scripted@{server.url}?replicas=2&max_concurrency=4&rpm=60000",
                               cache=tmp_path / "ray.sqlite")
    assert isinstance(replicated, RayReceiver)
    # Two replicas asking one endpoint split its per-minute budget.
    assert [replicated._overrides(i)["rpm"] for i in range(2)] == [30000, 30000]
    assert replicated.identity == plain.identity  # with or without Ray: the same tables and cache
    expected = [r.text for r in plain.respond(batch)]
    got = replicated.respond(batch, samples=[0] * 40)
    assert [r.text for r in got] == expected == [double(p) for p in batch]
    assert keys(tmp_path / "plain.sqlite") == keys(tmp_path / "ray.sqlite")
    assert replicated.stats.calls == 40 and sum(replicated.answered) == 40
    assert all(n > 0 for n in replicated.answered), replicated.answered  # both replicas did work
    # The driver's cache is the one store: a rerun asks nobody.
    before = server.count
    assert [r.text for r in replicated.respond(batch)] == expected
    assert server.count == before and all(r.cached for r in replicated.respond(batch))
    replicated.close()


def test_endpoints_get_a_replica_each(ray_local, make_server, tmp_path) -> None:
    first, second = make_server(double), make_server(double)
    receiver = make_receiver(f"ray:openai:scripted?endpoints={second.url},{first.url}&rpm=6000", cache=False)
    assert receiver.replicas == 2
    # A per-minute budget is one per endpoint: each endpoint's replica has all of it.
    assert [receiver._overrides(i)["rpm"] for i in range(2)] == [6000, 6000]
    # Declared to serve one model: one identity, the sorted list, and no endpoint of its own.
    assert receiver.identity["cache_key"] == ",".join(sorted([first.url, second.url]))
    assert "endpoint" not in receiver.identity
    assert [r.text for r in receiver.respond(prompts(30))] == [double(p) for p in prompts(30)]
    assert first.count > 0 and second.count > 0 and first.count + second.count == 30
    receiver.close()


def test_a_replica_killed_mid_batch_the_batch_completes_and_nothing_is_paid_twice(ray_local, make_server, tmp_path) -> None:
    server = make_server(double, latency_s=0.05)
    receiver = make_receiver(f"ray:openai:scripted@{server.url}?replicas=2&max_concurrency=4",
                             cache=tmp_path / "c.sqlite")
    n = 120

    def kill_when_busy() -> None:
        while server.count < 20:
            time.sleep(0.005)
        ray.kill(receiver._actors[0], no_restart=False)  # Ray restarts it and retries its calls

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    responses = receiver.respond(prompts(n))
    killer.join()
    assert [r.text for r in responses] == [double(p) for p in prompts(n)]
    assert len(keys(tmp_path / "c.sqlite")) == n
    # Only the calls in flight on the killed replica may have been asked twice.
    assert n <= server.count <= n + receiver.in_flight_bound
    receiver.close()


def test_a_replica_dead_for_good_is_skipped_from_then_on(ray_local, make_server, tmp_path, caplog) -> None:
    server = make_server(double, latency_s=0.05)
    receiver = make_receiver(f"ray:openai:scripted@{server.url}?replicas=2&max_concurrency=4&max_restarts=0",
                             cache=tmp_path / "c.sqlite")
    assert isinstance(receiver, RayReceiver) and receiver.max_restarts == 0
    n = 120

    def kill_when_busy() -> None:
        while server.count < 20:
            time.sleep(0.005)
        ray.kill(receiver._actors[0], no_restart=True)  # no restarts left: dead for good

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    with caplog.at_level(logging.DEBUG, logger="persuasion_gym.receivers.ray_replicas"):
        responses = receiver.respond(prompts(n))
    killer.join()
    assert [r.text for r in responses] == [double(p) for p in prompts(n)]
    assert len(keys(tmp_path / "c.sqlite")) == n
    assert n <= server.count <= n + receiver.in_flight_bound  # only its calls in flight were asked twice
    told = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert receiver._dead == {0} and len(told) == 1 and "dead with no restarts left" in told[0].getMessage()
    # The next batch goes to the live replica alone: no call to the dead one, no warning.
    caplog.clear()
    answered, before = list(receiver.answered), server.count
    with caplog.at_level(logging.DEBUG, logger="persuasion_gym.receivers.ray_replicas"):
        assert [r.text for r in receiver.respond(prompts(30, start=n))] == [double(p) for p in prompts(30, start=n)]
    assert not caplog.records and server.count == before + 30
    assert receiver.answered == [answered[0], answered[1] + 30]
    # A worker process that finds the actors by name (``__setstate__``) learns the dead one from Ray.
    state = receiver.__getstate__()
    state["_dead"] = set()
    clone = RayReceiver.__new__(RayReceiver)
    clone.__setstate__(state)
    assert clone._dead == {0} and clone._actors[0] is None and clone._actors[1] is not None
    # All dead: a clear error, not a hang; close() starts fresh replicas on the next batch.
    ray.kill(receiver._actors[1], no_restart=True)
    with pytest.raises(ReceiverUnavailableError, match=r"every replica of .* is dead with no restarts left.*close\(\)"):
        receiver.respond(prompts(8, start=200))
    with pytest.raises(ReceiverUnavailableError, match=r"every replica .* earlier batch"):
        receiver.respond(prompts(8, start=200))
    receiver.close()
    assert [r.text for r in receiver.respond(prompts(8, start=200))] == [double(p) for p in prompts(8, start=200)]
    receiver.close()


def test_replicas_fill_uneven_nodes_and_too_many_fail_up_front() -> None:
    from persuasion_gym.receivers.ray_replicas import place

    nodes = [{"NodeID": "small", "Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
             {"NodeID": "big", "Alive": True, "Resources": {"CPU": 32.0, "GPU": 4.0}},
             {"NodeID": "gone", "Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    # One GPU each: the small node holds one, the big node four; in turn while they have room.
    assert place(nodes, 5, 1, 1) == ["small", "big", "big", "big", "big"]
    assert place(nodes, 2, 1, 1) == ["small", "big"]
    assert place(nodes, 4, 8, 0) == ["small", "big", "big", "big"]  # CPUs bound too
    assert place(nodes, 4, 0, 0) == ["small", "big", "small", "big"]  # an endpoint's replicas ask nothing
    assert place([{"NodeID": "a", "Alive": True, "Resources": {"CPU": 0.3}}], 3, 0.1, 0) == ["a"] * 3
    with pytest.raises(ConfigError, match=r"can hold 5 replicas of 1 CPUs and 1 GPUs each, not 6.*lower replicas="):
        place(nodes, 6, 1, 1)
    with pytest.raises(ConfigError, match=r"can hold 0 replicas"):
        place(nodes, 1, 1, 8)  # the only node with 8 GPUs is dead


def test_bad_ray_input_gets_errors_that_name_the_fix(ray_local, make_server) -> None:
    server = make_server(double)
    with pytest.raises(ConfigError, match=r"has 0 GPUs.*drop num_gpus="):
        make_receiver(f"ray:openai:scripted@{server.url}?num_gpus=1")
    # More replicas than the session's 2 CPUs hold: said at once, not after the startup timeout.
    with pytest.raises(ConfigError, match=r"replicas=3: the Ray cluster can hold 2 replicas.*lower replicas="):
        make_receiver(f"ray:openai:scripted@{server.url}?replicas=3&num_cpus=1&startup_timeout=5")
    # The inner spec fails where it runs, on the workers: the error says so and carries the cause.
    with pytest.raises(ReceiverUnavailableError, match=r"failed to start on the Ray workers.*cannot reach"):
        make_receiver("ray:openai:@http://127.0.0.1:9/v1?max_retries=0")


def test_connect_again_to_the_cluster_it_is_on_by_any_of_its_addresses(ray_local, monkeypatch) -> None:
    from persuasion_gym import cluster

    current = ray_local.get_runtime_context().gcs_address
    port = int(current.rpartition(":")[2])
    # Ray reports the node's IP; the CLI's --ray-address may say loopback or a host name.
    assert cluster.connect(f"127.0.0.1:{port}") is ray_local
    assert cluster.connect(f"localhost:{port}") is ray_local
    assert cluster.connect(current) is ray_local and cluster.connect("auto") is ray_local
    other = f"127.0.0.1:{port + 1}"
    with pytest.raises(ConfigError, match=rf"already connected to the Ray cluster at {current}, not {other}:"):
        cluster.connect(other)
    # A ray:// client address never reads like the GCS address: the one this process joined counts.
    assert not cluster.same_cluster("ray://head:10001", current)
    monkeypatch.setitem(cluster._joined, "ray://head:10001", current)
    assert cluster.same_cluster("ray://head:10001", current)
    assert not cluster.same_cluster("ray://head:10001", "192.0.2.99:6379")  # joined, but another cluster since


@pytest.mark.parametrize("address", ["127.0.0.1:9", "[::1]:9"])
def test_an_unreachable_ray_address_is_a_clear_cli_error(make_server, tmp_path, address) -> None:
    server = make_server(double)
    env = {**os.environ, "PERSUASION_GYM_CACHE_DIR": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-m", "persuasion_gym", "check", "--receiver", f"ray:openai:scripted@{server.url}",
         "--ray-address", address],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"cannot join the Ray cluster at '{address}'" in done.stderr and "ray start --head" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_envs_run_on_a_ray_receiver(ray_local, make_server, gold_by_question) -> None:
    import gymnasium as gym

    from testkit import question_of

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.")
    receiver = make_receiver(f"ray:openai:scripted@{server.url}?replicas=2", cache=False)
    env = gym.make("Persuasion-GSM8K-v0", receiver=receiver, max_items=6, featurizer="hashed")
    env.reset(seed=0)
    assert env.step(1)[1] == 1.0
    venv = gym.make_vec("Persuasion-GSM8K-v0", num_envs=6, receiver=receiver, max_items=6, featurizer="hashed")
    venv.reset(seed=0)
    rewards = venv.step(np.arange(6))[1]
    assert rewards.tolist() == [1.0] * 6
    receiver.close()


def test_programs_run_on_the_cluster_with_the_same_verdicts(ray_local) -> None:
    from persuasion_gym.sandbox import CodeCheck, Limits, Sandbox
    from persuasion_gym.sandbox.on_ray import RaySandbox

    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    checks = [CodeCheck("def add(a, b):\n    return a + b\n", tests, "add"),
              CodeCheck("def add(a, b):\n    return a - b\n", tests, "add"),
              CodeCheck("def add(a, b):\n    while True: pass\n", tests, "add")]
    limits = Limits(timeout_s=2)
    local = Sandbox("rlimits", limits).run_many(checks)
    remote = RaySandbox("rlimits", limits).run_many(checks)
    assert [v.status for v in remote] == [v.status for v in local] == ["passed", "failed", "timeout"]


def test_the_workers_run_the_isolation_the_driver_resolved_or_fail_loudly(ray_local, monkeypatch, tmp_path) -> None:
    import shutil

    from persuasion_gym.sandbox import CodeCheck, Limits, detect
    from persuasion_gym.sandbox.on_ray import RaySandbox

    check = CodeCheck("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5", "add")
    sandbox = RaySandbox("auto", Limits(timeout_s=5))
    resolved = detect("auto")
    assert sandbox.worker_mode == ("bwrap" if resolved.isolated else "rlimits")  # never "auto"
    assert [v.isolation for v in sandbox.run_many([check])] == [resolved.name] == [sandbox.isolation.name]
    if not resolved.isolated:
        pytest.skip("no bubblewrap here: a worker without it cannot be told from this one")
    # A worker without bubblewrap (its PATH holds only the bash Ray starts it with) is told "bwrap":
    # it fails, it does not fall back.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "bash").symlink_to(shutil.which("bash"))
    remote = ray_local.remote
    monkeypatch.setattr(ray_local, "remote", lambda **options: remote(
        **options, runtime_env={"env_vars": {"PATH": str(tmp_path / "bin")}}))
    with pytest.raises(ConfigError, match=r"cannot run the sandbox the driver chose \(bwrap\).*bwrap is not on "
                                          r"PATH.*isolation='rlimits'") as raised:
        RaySandbox("auto", Limits(timeout_s=5)).run_many([check])
    assert "Traceback" not in str(raised.value)


@pytest.mark.filterwarnings("ignore:.*sandbox.*:RuntimeWarning")
def test_a_humaneval_env_on_the_ray_sandbox_gives_the_local_verdicts(ray_local, make_server) -> None:
    import gymnasium as gym

    from persuasion_gym.tasks.humaneval import HumanEvalTask

    first, second = HumanEvalTask().load(max_items=2).items

    def reply(messages: list[dict[str, str]]) -> str:  # the first problem solved, the second not
        if first.text.rstrip() in messages[-1]["content"]:
            return f"```python\n{first.text}{first.gold}```"
        return f"```python\n{second.text}    return None\n```"

    server = make_server(reply)
    verdicts = {}
    for sandbox in ("local", "ray"):
        env = gym.make("Persuasion-HumanEval-v0", receiver=f"openai:scripted@{server.url}", sandbox=sandbox,
                       isolation="rlimits", max_items=2, featurizer="hashed", timeout_s=5)
        verdicts[sandbox] = []
        for i in range(2):
            env.reset(seed=0, options={"item_index": i})
            _, reward, terminated, _, info = env.step(0)
            assert terminated
            verdicts[sandbox].append((reward, info["verdict"], info["sandbox"]))
        env.close()
    assert verdicts["ray"] == verdicts["local"]
    assert [v[:2] for v in verdicts["ray"]] == [(1.0, "passed"), (0.0, "failed")]
    assert {v[2] for v in verdicts["ray"]} == {"rlimits"}


@pytest.mark.slow
def test_record_on_a_two_node_cluster_killed_and_rerun_gives_the_plain_table(make_server, gold_by_question, tmp_path) -> None:
    from persuasion_gym.tables import load_table
    from testkit import question_of

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", latency_s=0.05)
    # The Cluster lives in a process of its own: its shutdown resets the Ray state of the process
    # that made it, which would cut this session's Ray off from its own key-value store.
    cluster = subprocess.Popen([sys.executable, "-c", TWO_NODES], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    address = ""
    for line in cluster.stdout:  # Ray may log before the address
        if line.startswith("ADDRESS "):
            address = line.split()[1]
            break
    assert address, "the two-node cluster did not start"
    try:
        env = {**os.environ, "PERSUASION_GYM_CACHE_DIR": str(tmp_path / "cache")}
        env.pop("RAY_ADDRESS", None)
        common = ["--env", "Persuasion-GSM8K-v0", "--split", "test", "--n-items", "12"]
        spec = f"ray:openai:scripted@{server.url}?replicas=2&max_concurrency=2"
        command = [sys.executable, "-m", "persuasion_gym", "record", *common, "--receiver", spec,
                   "--ray-address", address, "--out", str(tmp_path / "ray.npz")]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while server.count < 30 and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # killed mid-recording
        first.wait(timeout=60)
        paid = server.count
        assert paid < 120, "the recording finished before it was killed"
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "2 replicas" in rerun.stderr and "on 2 nodes" in rerun.stderr, rerun.stderr[:3000]  # spread over both nodes
        # Every cell paid once, but for those in flight when it was killed (2 replicas x 2 calls).
        assert 120 <= server.count <= 120 + 4
        plain = subprocess.run(
            [sys.executable, "-m", "persuasion_gym", "record", *common, "--receiver", f"openai:scripted@{server.url}",
             "--out", str(tmp_path / "plain.npz")],
            env={**env, "PERSUASION_GYM_CACHE_DIR": str(tmp_path / "plain-cache")}, capture_output=True, text=True,
            timeout=240,
        )
        assert plain.returncode == 0, plain.stderr[-3000:]
        on_ray, here = load_table(tmp_path / "ray.npz"), load_table(tmp_path / "plain.npz")
        assert np.array_equal(on_ray.scores, here.scores) and on_ray.scores.mean() == 1.0
        assert on_ray.responses == here.responses
        assert on_ray.meta["receiver"] == here.meta["receiver"]
    finally:
        cluster.stdin.close()  # the cluster shuts down
        cluster.wait(timeout=120)


@pytest.mark.filterwarnings("ignore::UserWarning")  # gymnasium reports the fork error it re-raises
def test_an_async_vector_env_shares_the_replicas(ray_local, make_server, gold_by_question) -> None:
    import gymnasium as gym

    from testkit import question_of

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.")
    receiver = make_receiver(f"ray:openai:scripted@{server.url}?replicas=2", cache=False)
    options = {"num_envs": 2, "vectorization_mode": "async", "receiver": receiver, "max_items": 4, "featurizer": "hashed"}
    venv = gym.make_vec("Persuasion-GSM8K-v0", vector_kwargs={"context": "spawn"}, **options)
    venv.reset(seed=0)
    assert venv.step(np.array([1, 2]))[1].tolist() == [1.0, 1.0]
    venv.close()
    forked = gym.make_vec("Persuasion-GSM8K-v0", vector_kwargs={"context": "fork"}, **options)
    forked.reset(seed=0)
    with pytest.raises(ConfigError, match=r"cannot cross a fork.*'spawn'"):
        forked.step(np.array([1, 2]))
    forked.close()
    # The workers found this receiver's actors by name: no new replicas were started.
    assert len([a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(receiver._group)]) == 2
    receiver.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
def test_train_bench_and_the_lm_advisor_take_a_ray_receiver(ray_local, make_server, gold_by_question, tmp_path,
                                                            capsys) -> None:
    """``train`` (SB3 PPO and the LM Advisor's GRPO) and ``bench`` take a ``ray:`` spec like any other."""
    import json

    from testkit import build_tiny_advisor
    from persuasion_gym.cli.main import main
    from testkit import advice_of, question_of

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if '?' in advice_of(m) else -1}.")
    spec = f"ray:openai:scripted@{server.url}?replicas=2"
    common = ["--receiver", spec, "--featurizer", "hashed", "--ray-address", ray_local.get_runtime_context().gcs_address]
    advisor = tmp_path / "advisor"
    assert main(["train", "--algo", "lm-advisor", "--advisor", str(build_tiny_advisor(tmp_path / "tiny")), *common,
                 "--n-items", "8", "--steps", "2", "--num-generations", "4", "--save-steps", "2",
                 "--out", str(advisor)]) == 0
    assert '"steps": 2' in capsys.readouterr().out and server.count > 0
    calls = server.count
    assert main(["train", "--algo", "ppo", *common, "--n-items", "8", "--timesteps", "64", "--n-envs", "8",
                 "--eval-items", "4", "--eval-freq", "64", "--out", str(tmp_path / "ppo")]) == 0
    assert (tmp_path / "ppo" / "model.zip").is_file() and server.count > calls
    bench = tmp_path / "bench"
    assert main(["bench", *common, "--policies", "none,best-fixed,lm-advisor", "--advisor", str(advisor / "advisor"),
                 "--n-items", "6", "--train-items", "6", "--out", str(bench)]) == 0
    rows = {r["policy"]: r for r in json.loads((bench / "results.json").read_text())["rows"]}
    assert set(rows) == {"none", "best-fixed", "lm-advisor"}
    assert rows["none"]["accuracy"] == 0.0  # an empty advice holds no question mark
    # The Ray Receiver's identity is the inner one's: the Advisor records the plain openai Receiver.
    assert json.loads(rows["lm-advisor"]["trained_on"]) == make_receiver(f"openai:scripted@{server.url}").identity
