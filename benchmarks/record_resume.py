"""Recording: the wall time of a resumed recording (killed half-way, then run again) against an
uninterrupted one, and the Receiver calls each paid, in one run. The calls of the killed run
are the cache hits of the resumed one (requests in flight at the kill are lost with it). The scripted loopback server
runs in its own process with a fixed latency; each recording runs as `persuasion-gym record`.

    python benchmarks/record_resume.py [--items 40] [--latency 0.05] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from persuasion_gym.testing import server_process

CLI = [sys.executable, "-m", "persuasion_gym.cli.main"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    def run(spec: str, cache: Path, out: Path, kill_after: float | None = None) -> tuple[float, dict | None]:
        env = {**os.environ, "PERSUASION_GYM_CACHE_DIR": str(cache)}
        began = time.perf_counter()
        proc = subprocess.Popen([*CLI, "record", "--receiver", spec, "--n-items", str(args.items), "--out", str(out)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return time.perf_counter() - began, None
        stdout, _ = proc.communicate()
        return time.perf_counter() - began, json.loads(stdout)

    with server_process(args.latency, "The answer is 3.") as (url, _), tempfile.TemporaryDirectory() as tmp:
        spec = f"openai:scripted@{url}?max_concurrency={args.concurrency}"
        folder = Path(tmp)
        whole, summary = run(spec, folder / "a", folder / "a.npz")
        first, _ = run(spec, folder / "b", folder / "b.npz", kill_after=whole / 2)
        second, resumed = run(spec, folder / "b", folder / "b.npz")
        rerun, cached = run(spec, folder / "a", folder / "c.npz")  # the fixed cost: start-up, all cached
    cells = summary["cells"]
    print(f"Recording {cells} cells, loopback latency {args.latency:g} s, concurrency {args.concurrency}\n")
    print("| recording | wall time (s) | Receiver calls | ratio to uninterrupted |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| uninterrupted | {whole:.2f} | {summary['receiver_calls']} | 1.00 |")
    print(f"| killed at half-way, then resumed | {first:.2f} + {second:.2f} = {first + second:.2f} | "
          f"{resumed['cache_hits']} + {resumed['receiver_calls']} | {(first + second) / whole:.2f} |")
    print(f"| a finished recording run again (start-up alone) | {rerun:.2f} | {cached['receiver_calls']} | "
          f"{rerun / whole:.2f} |")


if __name__ == "__main__":
    main()
