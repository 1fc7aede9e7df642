"""Recording on Ray: cells per second of ``record`` (GSM8K items x the 10 signals, a fresh cache
each time, so every cell is a request) through the Ray Receiver with 1, 2 and 4 replicas,
each replica keeping C requests in flight, against one loopback server with latency L in its
own process; and the plain Receiver at the same C, for what Ray itself costs. One run, one
local Ray (started once, before the first timing), every setting timed ``--repeats`` times
(the median is shown).

    python benchmarks/ray_recording.py [--items 40] [--latency 0.2] [--concurrency 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import persuasion_gym  # noqa: F401
from persuasion_gym.cluster import connect
from persuasion_gym.receivers import make_receiver, open_cache
from persuasion_gym.tables import record
from persuasion_gym.testing import server_process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with server_process(args.latency, "The answer is 3.") as (url, _):
        inner = f"openai:scripted@{url}?max_concurrency={args.concurrency}"
        env = gym.make("Persuasion-GSM8K-v0", split="test", max_items=args.items, featurizer="hashed",
                       receiver=make_receiver(inner, cache=False)).unwrapped
        cells = len(env.dataset) * len(env.signals)
        connect(num_cpus=2)
        settings = [("plain Receiver", inner)] + [(f"Ray, {r} replica{'s' * (r > 1)}", f"ray:{inner}&replicas={r}")
                                                  for r in (1, 2, 4)]
        rates: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, spec in settings:
                receiver = make_receiver(spec, cache=False)  # replicas start before the clock
                times = []
                for repeat in range(args.repeats):
                    receiver.cache = open_cache(Path(tmp) / f"{len(rates)}-{repeat}.sqlite")  # empty: all paid
                    began = time.perf_counter()
                    record(env.task, receiver, env.dataset, list(env.signals), progress=False)
                    times.append(time.perf_counter() - began)
                    assert receiver.stats.calls == cells * (repeat + 1)
                rates[name] = cells / statistics.median(times)
                receiver.close()

    print(f"Recording {cells} cells ({args.items} GSM8K items x {len(env.signals)} signals), loopback server latency "
          f"L = {args.latency:g} s, C = {args.concurrency} requests in flight per replica, median of {args.repeats}\n")
    print("| Receiver | cells/s | bound (replicas x C / L) | to 1 Ray replica | to the plain Receiver |")
    print("| --- | ---: | ---: | ---: | ---: |")
    one = rates["Ray, 1 replica"]
    for name, rate in rates.items():
        replicas = int(name.split(", ")[1].split()[0]) if name.startswith("Ray") else 1
        bound = replicas * args.concurrency / args.latency
        print(f"| {name} | {rate:.1f} | {bound:.0f} | {rate / one:.2f} | {rate / rates['plain Receiver']:.2f} |")


if __name__ == "__main__":
    main()
