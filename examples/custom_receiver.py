"""A Receiver of your own: implement `identity` and `generate`; batching, caching, usage and
the Gymnasium envs come with the base class. Here a heuristic "model" that answers with the
largest number in the question, to show the interface without any server; wrap your own API
client the same way (yield each response as it arrives).

    python examples/custom_receiver.py [--items 10]
"""

import argparse
import re
import time

import gymnasium as gym

import persuasion_gym  # noqa: F401
from persuasion_gym.receivers import Receiver, Response, Usage


class LargestNumberReceiver(Receiver):
    kind = "largest-number"

    @property
    def identity(self):
        return {"kind": self.kind, "model": "heuristic-v1"}  # what the cache is keyed on

    def generate(self, requests):
        for index, request in enumerate(requests):
            began = time.perf_counter()
            question = request.messages[-1]["content"]
            numbers = [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\.?\d*", question)]
            answer = f"The answer is {max(numbers):g}." if numbers else "I don't know."
            tokens = Usage(len(question.split()), len(answer.split()))
            yield index, Response(answer, tokens, time.perf_counter() - began)


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--items", type=int, default=10, help="GSM8K test questions (default: %(default)s)")
args = parser.parse_args()

receiver = LargestNumberReceiver()
env = gym.make("Persuasion-GSM8K-v0", receiver=receiver, split="test", max_items=args.items, featurizer="hashed")
outcomes = env.unwrapped.evaluate([0] * args.items)
print(f"accuracy of the heuristic Receiver on {args.items} questions: {sum(o.reward for o in outcomes) / args.items:.2f}")
env.unwrapped.evaluate([0] * args.items)
print(f"asked again: {receiver.stats.cache_hits} answers came from the cache, {receiver.stats.calls} were generated")
