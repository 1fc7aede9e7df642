"""Episodes per second through the OpenEnv server (``persuasion-gym serve``, its own process)
at C concurrent sessions, against the in-process native vector env with C envs, both asking
the same scripted loopback Receiver (its own process, fixed latency L), side by side in one run.

Each OpenEnv session is one ``PersuasionEnvClient`` (OpenEnv's WebSocket client) looping
reset + step on its own, C of them on one asyncio loop in this process; the vector env steps
C envs at a time. Every episode is a paid request (a new sample of its cell,
``samples_per_cell`` large) cached in a fresh file, and the Receiver may keep C requests in
flight (``max_concurrency``), so the bound is C / L episodes per second. Also shown: the
server's mean batch (steps per ``env.play`` batch). Each figure is the median of
``--repeats`` timings.

    python benchmarks/openenv_throughput.py [--latency 0.1] [--sessions 1,16,64] [--episodes 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import persuasion_gym  # noqa: F401
from persuasion_gym.serving.openenv import PersuasionEnvClient
from persuasion_gym.testing import server_process

SAMPLES = 1_000_000  # every visit of a cell asks a new sample: every episode is a request


def openenv_rate(url: str, sessions: int, episodes: int) -> tuple[float, float]:
    """Episodes per second of ``sessions`` OpenEnv sessions, each ``episodes`` reset + step
    loops (after one to warm up), and the server's mean batch over the timed part."""
    async def run() -> tuple[float, float]:
        clients = [PersuasionEnvClient(base_url=url, message_timeout_s=300) for _ in range(sessions)]
        for client in clients:
            await client.connect()

        async def loop(j: int, n: int) -> None:
            for e in range(n):
                await clients[j].reset()
                await clients[j].step((j + e) % 10)  # an index: the library's signal, sent as its text

        await asyncio.gather(*(loop(j, 1) for j in range(sessions)))
        before = await clients[0].state()
        began = time.perf_counter()
        await asyncio.gather(*(loop(j, episodes) for j in range(sessions)))
        rate = sessions * episodes / (time.perf_counter() - began)
        after = await clients[0].state()
        for client in clients:
            await client.close()
        batches = after.batches_played - before.batches_played
        return rate, (after.steps_played - before.steps_played) / max(batches, 1)

    return asyncio.run(run())


def vector_rate(url: str, sessions: int, episodes: int, cache: Path) -> float:
    """Episodes per second of the native vector env, ``episodes`` steps of ``sessions`` envs."""
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=sessions, split="test", observation="text", cache=cache,
                        action_type="text", receiver=f"openai:scripted@{url}?max_concurrency={sessions}",
                        samples_per_cell=SAMPLES)
    signals = list(envs.unwrapped.env.signals)
    envs.reset(seed=0)
    actions = [signals[j % 10] for j in range(sessions)]
    envs.step(actions)  # warm-up: connections
    began = time.perf_counter()
    for _ in range(episodes):
        envs.step(actions)
    rate = episodes * sessions / (time.perf_counter() - began)
    envs.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1, help="the Receiver's seconds per answer")
    parser.add_argument("--sessions", default="1,16,64", help="concurrent sessions (and vector envs), comma-separated")
    parser.add_argument("--episodes", type=int, default=8, help="timed episodes per session")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = [int(c) for c in args.sessions.split(",")]
    most = max(counts)

    print(f"OpenEnv server against the native vector env, Receiver latency {args.latency:g} s, "
          f"median of {args.repeats}\n")
    print("| sessions C | bound C/L | OpenEnv server, episodes/s | mean batch | native vector env, episodes/s "
          "| server / vector env |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with server_process(args.latency, "The answer is 3.") as (url, _), tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PERSUASION_GYM_CACHE_DIR": str(Path(tmp) / "server-cache")}
        command = [sys.executable, "-m", "persuasion_gym", "serve", "--receiver",
                   f"openai:scripted@{url}?max_concurrency={most}", "--split", "test", "--port", "0",
                   "--max-sessions", str(most), "--samples-per-cell", str(SAMPLES)]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
        try:
            assert server.stdout is not None
            address = server.stdout.readline().split(" at ", 1)[1].split()[0]
            for c in counts:
                served, batch, native = [], [], []
                for repeat in range(args.repeats):  # interleaved, so drifts hit both alike
                    rate, mean_batch = openenv_rate(address, c, args.episodes)
                    served.append(rate)
                    batch.append(mean_batch)
                    native.append(vector_rate(url, c, args.episodes, Path(tmp) / f"vector-{c}-{repeat}.sqlite"))
                s, b, v = (statistics.median(x) for x in (served, batch, native))
                print(f"| {c} | {c / args.latency:.0f} | {s:.1f} | {b:.1f} | {v:.1f} | {s / v:.2f} |", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
