"""Your own signal library: pass a list of texts as `signals=` (the empty string is "no signal").

    python examples/custom_signals.py [--receiver SPEC] [--items 8]
"""

import argparse

import gymnasium as gym

import persuasion_gym  # noqa: F401

SIGNALS = [
    "",
    "Solve it backwards: start from what the question asks and work towards the given numbers.",
    "Draw a small table of the quantities before computing anything.",
    "Estimate the answer first, then compute it exactly and compare.",
]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: %(default)s)")
parser.add_argument("--items", type=int, default=8, help="GSM8K test questions (default: %(default)s)")
args = parser.parse_args()

env = gym.make("Persuasion-GSM8K-v0", receiver=args.receiver, signals=SIGNALS, split="test",
               max_items=args.items, featurizer="hashed")
print(f"action space: {env.action_space} over {len(SIGNALS)} signals")
# Every signal on every question, as one batch of Receiver calls:
n = args.items
outcomes = env.unwrapped.evaluate([k for _ in range(n) for k in range(len(SIGNALS))],
                                  [i for i in range(n) for _ in SIGNALS])
for k, signal in enumerate(SIGNALS):
    accuracy = sum(o.reward for o in outcomes[k::len(SIGNALS)]) / n
    print(f"{accuracy:5.2f}  {signal or '(no signal)'}")
