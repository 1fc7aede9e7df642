"""The Receiver calls each method spends to reach its held-out accuracy, side by side in one
run on one scripted Receiver: GEPA's prompt search, the LM Advisor's GRPO (a tiny Advisor built
from a config), the bandits, best-fixed and a prompted Advisor.

The scripted Receiver answers GSM8K right when the advice names "zebra" (no library signal
does), and with the library's hint on units on questions that ask "how many" (no
other signal helps). So best-fixed and the bandits can reach the "how many" share, and only
free text can reach all. Every method has its own cache (a cold start), and calls are what
`bench` counts: training and held-out answers, the method's own model apart.

    python benchmarks/baseline_calls.py [--train-items 12] [--test-items 12] [--budget 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-items", type=int, default=12)
    parser.add_argument("--test-items", type=int, default=12)
    parser.add_argument("--budget", type=int, default=60, help="gepa's search budget")
    parser.add_argument("--timesteps", type=int, default=200, help="bandit training episodes")
    parser.add_argument("--steps", type=int, default=4, help="the LM Advisor's GRPO steps")
    args = parser.parse_args()
    os.environ.setdefault("PERSUASION_GYM_DATA_DIR", str(REPO.parent / "shared" / "data"))

    from testkit import build_tiny_advisor

    from persuasion_agents.benchmark import Setting, run_benchmark
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
    from persuasion_gym.tasks import GSM8KTask
    from persuasion_gym.testing import ScriptedChatServer

    task = GSM8KTask()
    gold = {item.text: item.gold for split in ("train", "test") for item in task.load(split, None, 200).items}

    def receiver(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        question = re.match(r"Question: (.*?)(?:\n\nAdvice: .*)?$", user, re.S).group(1)  # type: ignore[union-attr]
        advice = (re.search(r"\n\nAdvice: (.*)$", user, re.S) or [None, ""])[1]
        right = "zebra" in advice.lower() or ("units" in advice.lower() and "how many" in question.lower())
        return f"The answer is {gold[question] if right else -1}."

    methods = {
        "best-fixed": {}, "ucb": {}, "thompson": {},
        "gepa": {"budget": args.budget},
        "prompted-advisor": {},
        "lm-advisor": {"training": AdvisorTraining(steps=args.steps, items_per_step=2, num_generations=4,
                                                   save_steps=args.steps)},
    }
    print(f"{args.train_items} training and {args.test_items} held-out GSM8K items; bandits {args.timesteps} "
          f"episodes; GEPA budget {args.budget}; LM Advisor {args.steps} GRPO steps\n")
    print("| method | held-out accuracy | Receiver calls | its own model's calls |")
    print("| --- | ---: | ---: | ---: |")
    with ScriptedChatServer(receiver) as server, \
            ScriptedChatServer(lambda m: "```\nName the zebra method, then solve step by step.\n```") as helper, \
            tempfile.TemporaryDirectory() as tmp:
        advisor = build_tiny_advisor(Path(tmp) / "tiny")
        for name, options in methods.items():
            os.environ["PERSUASION_GYM_CACHE_DIR"] = str(Path(tmp) / name / "cache")  # a cold cache each
            if name == "gepa":
                options.update(reflection_lm=f"openai:scripted@{helper.url}", out=str(Path(tmp) / name / "search"))
            if name == "prompted-advisor":
                options["advisor_lm"] = f"openai:scripted@{helper.url}"
            if name == "lm-advisor":
                options.update(advisor=str(advisor), out=str(Path(tmp) / name / "advisor"))
            setting = Setting("Persuasion-GSM8K-v0", f"openai:scripted@{server.url}", n_items=args.test_items,
                              train_items=args.train_items)
            rows = run_benchmark([setting], ["none", name], Path(tmp) / name / "bench", args.timesteps,
                                 featurizer="hashed", progress=False, policy_options={name: options})
            row = next(r for r in rows if r["policy"] == name)
            print(f"| {name} | {row['accuracy']:.3f} | {row['receiver_calls']} | {row.get('advisor_calls', '')} |",
                  flush=True)
            if name == "gepa":
                run = json.loads(next((Path(tmp) / name / "bench" / "runs").glob("*__gepa.json")).read_text())
                print(f"|   (gepa found: {run['gepa']['text']!r}) | | | |")


if __name__ == "__main__":
    main()
