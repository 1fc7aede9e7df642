"""Live batched throughput: episodes per second of the native vector env against the scripted
loopback OpenAI-compatible server with a fixed latency L, at concurrency C (C envs, C requests
in flight), against the bound C / L. One run; the cache is off so every episode is a request.
The server runs in its own process, as a real endpoint would.

    python benchmarks/live_throughput.py [--latency 0.1] [--concurrency 1,4,16,64] [--steps 10]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np

import persuasion_gym  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    print(f"Live throughput, loopback server latency L = {args.latency:g} s, native vector env, cache off\n")
    print("| concurrency C | episodes/s | bound C/L | share of the bound |")
    print("| ---: | ---: | ---: | ---: |")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "persuasion_gym.testing", "--port", str(port),
                               "--latency", str(args.latency), "--text", "The answer is 3."], stdout=subprocess.PIPE)
    server.stdout.readline()  # "serving ..." once listening
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for c in (int(x) for x in args.concurrency.split(",")):
            envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=c, split="test", featurizer="hashed", cache=False,
                                receiver=f"openai:scripted@{url}?max_concurrency={c}")
            envs.reset(seed=0)
            actions = np.zeros(c, dtype=np.int64)
            envs.step(actions)  # warm-up: connections
            began = time.perf_counter()
            for _ in range(args.steps):
                envs.step(actions)
            rate = args.steps * c / (time.perf_counter() - began)
            bound = c / args.latency
            print(f"| {c} | {rate:.1f} | {bound:.0f} | {rate / bound:.2f} |")
            envs.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
