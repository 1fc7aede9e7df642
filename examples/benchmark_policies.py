"""Benchmark signaling policies on held-out GSM8K questions, with 95% CIs, paired tests,
tokens and cost, and a figure; rerun it and it resumes from what it has.

    python examples/benchmark_policies.py [--receiver SPEC] [--test-items 50] [--train-items 50]
"""

import argparse

from persuasion_agents.benchmark import Setting, run_benchmark
from persuasion_agents.results import markdown

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: %(default)s)")
parser.add_argument("--test-items", type=int, default=50, help="held-out GSM8K test questions (default: %(default)s)")
parser.add_argument("--train-items", type=int, default=50, help="GSM8K training questions (default: %(default)s)")
parser.add_argument("--policies", default="none,random,best-fixed,oracle,ucb,linucb",
                    help="policy names, comma-separated (default: %(default)s)")
parser.add_argument("--timesteps", type=int, default=2_000,
                    help="training episodes per trained policy (default: %(default)s)")
parser.add_argument("--out", default="runs/benchmark", help="directory for the runs and results (default: %(default)s)")
args = parser.parse_args()

setting = Setting("Persuasion-GSM8K-v0", args.receiver, split="test", n_items=args.test_items,
                  train_split="train", train_items=args.train_items)
rows = run_benchmark([setting], args.policies.split(","), args.out, args.timesteps, featurizer="hashed")
print(markdown(rows))
print(f"figure: {args.out}/accuracy.png")
