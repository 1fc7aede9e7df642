"""Live batched throughput against the bare ``openai`` SDK: episodes per second of the native
vector env (C envs, ``max_concurrency=C``) against a bare ``AsyncOpenAI`` loop that keeps C
requests in flight, both asking the same scripted loopback server (its own process, fixed
latency L) the same GSM8K prompts, side by side in one run. The env runs with the cache off
and with the cache on (a fresh file each time, so every episode is still a paid request and a
cache write). Each figure is the median of ``--repeats`` timings. "server CPU" is the share of
one core the server process used during the bare-SDK runs: well under 100%, the server is not
what limits the client.

    python benchmarks/live_throughput.py [--cells 0.1:16,0.1:64,1:64,1:256] [--steps 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import openai

import persuasion_gym  # noqa: F401
from persuasion_gym.testing import server_process


def bare_sdk(url: str, prompts: list[list[dict[str, str]]], concurrency: int, aiohttp: bool = False) -> float:
    """Requests per second of ``AsyncOpenAI`` keeping ``concurrency`` requests in flight, on the
    SDK's default transport or on its aiohttp one (``DefaultAioHttpClient``)."""
    async def run() -> float:
        http = openai.DefaultAioHttpClient() if aiohttp else None
        client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=120, http_client=http)
        limit = asyncio.Semaphore(concurrency)

        async def one(messages: list[dict[str, str]]) -> None:
            async with limit:
                await client.chat.completions.create(model="scripted", messages=messages, temperature=0.0,
                                                     max_tokens=512)

        await asyncio.gather(*(one(m) for m in prompts[:concurrency]))  # warm-up: connections
        began = time.perf_counter()
        await asyncio.gather(*(one(m) for m in prompts))
        rate = len(prompts) / (time.perf_counter() - began)
        await client.close()
        return rate

    return asyncio.run(run())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vector_env(url: str, concurrency: int, steps: int, cache: Path | bool) -> float:
    """Episodes per second of the native vector env, ``steps`` steps of ``concurrency`` envs."""
    # Every visit of a cell asks a new sample, and the actions spread over the ten signals: each
    # episode is its own request (a repeat would be a cache hit, or merged within a batch).
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=concurrency, split="test", featurizer="hashed", cache=cache,
                        receiver=f"openai:scripted@{url}?max_concurrency={concurrency}", samples_per_cell=10_000)
    envs.reset(seed=0)
    actions = np.arange(concurrency, dtype=np.int64) % 10
    envs.step(actions)  # warm-up: connections (and the features)
    began = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    rate = steps * concurrency / (time.perf_counter() - began)
    envs.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", default="0.1:16,0.1:64,1:64,1:256", help="latency:concurrency pairs")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cells = [(float(lat), int(c)) for lat, c in (cell.split(":") for cell in args.cells.split(","))]

    print(f"Live throughput against the bare openai SDK (openai {openai.__version__}), median of {args.repeats}\n")
    print("| latency L | C | bound C/L | bare SDK req/s | server CPU (of a core) | bare SDK, aiohttp | env, cache off "
          "| env, cache on | off / bare | on / bare | off / bare aiohttp |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    task_env = gym.make("Persuasion-GSM8K-v0", split="test", featurizer="hashed", receiver="openai:x@http://127.0.0.1:9/v1",
                        cache=False).unwrapped
    for latency, c in cells:
        n = args.steps * c
        items = [task_env.dataset.items[i % len(task_env.dataset)] for i in range(n)]
        prompts = [task_env.task.build_messages(item, "") for item in items]
        bare, aio, off, on, server_load = [], [], [], [], []
        with server_process(latency, "The answer is 3.") as (url, server), tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):  # interleaved, so drifts hit all four alike
                began, cpu = time.perf_counter(), cpu_seconds(server.pid)
                bare.append(bare_sdk(url, prompts, c))
                server_load.append((cpu_seconds(server.pid) - cpu) / (time.perf_counter() - began))
                aio.append(bare_sdk(url, prompts, c, aiohttp=True))
                off.append(vector_env(url, c, args.steps, cache=False))
                on.append(vector_env(url, c, args.steps, cache=Path(tmp) / f"{repeat}.sqlite"))
        b, a, f, o, load = (statistics.median(x) for x in (bare, aio, off, on, server_load))
        print(f"| {latency:g} s | {c} | {c / latency:.0f} | {b:.1f} | {load:.0%} | {a:.1f} | {f:.1f} | {o:.1f} "
              f"| {f / b:.2f} | {o / b:.2f} | {f / a:.2f} |", flush=True)


if __name__ == "__main__":
    main()
