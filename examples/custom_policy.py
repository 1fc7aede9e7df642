"""A signaling policy of your own in a few lines, benchmarked beside the built-in ones.

    python examples/custom_policy.py [--receiver SPEC] [--items 20] [--out runs/custom-policy]
"""

import argparse

import numpy as np

from persuasion_agents.benchmark import Setting, run_benchmark
from persuasion_agents.policy import Policy
from persuasion_agents.registry import POLICIES
from persuasion_agents.results import markdown


class StepsForLongQuestions(Policy):
    """Step-by-step advice (signal 1) for questions over 200 characters, none for the rest."""

    name = "long-steps"

    def act(self, observations, info):
        return np.array([1 if len(text) > 200 else 0 for text in info["text"]])


POLICIES["long-steps"] = StepsForLongQuestions  # the benchmark finds policies by name

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: %(default)s)")
parser.add_argument("--items", type=int, default=20, help="GSM8K test questions (default: %(default)s)")
parser.add_argument("--out", default="runs/custom-policy",
                    help="directory for the runs and results (default: %(default)s)")
args = parser.parse_args()

setting = Setting("Persuasion-GSM8K-v0", args.receiver, split="test", n_items=args.items)
rows = run_benchmark([setting], ["none", "random", "long-steps"], args.out, featurizer="hashed", progress=False)
print(markdown(rows))
