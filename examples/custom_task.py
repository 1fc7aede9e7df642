"""Your own data set as a persuasion env: a Task subclass, then `register_env`, then `gym.make`.

The task here: unit conversions, from a JSONL file of {"question", "answer"} records (the
example writes a small one). A Task says how to load items (with their gold answers), how to
ask the Receiver (with the Advisor's signal as context), and how to score a response; it
carries its default signal library.

    python examples/custom_task.py [--receiver SPEC] [--data conversions.jsonl]
"""

import argparse
import json
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np

import persuasion_gym
from persuasion_gym.signals import SignalLibrary
from persuasion_gym.tasks import Dataset, Score, Task, TaskItem, extract_numeric_answer, numbers_match
from persuasion_gym.tasks.jsonl import file_sha256, read_jsonl

EXAMPLES = [("How many centimetres are in 3.5 metres?", "350"), ("How many minutes are in 2.5 hours?", "150"),
            ("How many grams are in 1.2 kilograms?", "1200"), ("How many seconds are in 4 minutes?", "240"),
            ("How many millilitres are in 0.75 litres?", "750"), ("How many inches are in 3 feet?", "36")]


class ConversionTask(Task):
    """Unit conversions; the reward is 1 when the final number equals the gold answer."""

    name = "conversions"
    text_key = "question"  # info["question"] holds an item's text
    default_signals = SignalLibrary(["", "Write the conversion factor first, then multiply.",
                                     "Convert to the base SI unit before anything else."])

    def load(self, split: str = "train", data_path: str | None = None, max_items: int | None = None) -> Dataset:
        path = Path(data_path)
        items = [TaskItem(f"conversions/{n}", r["question"], str(r["answer"]))
                 for n, r in read_jsonl(path, required=("question", "answer"))]  # errors name file:line
        return Dataset(self.name, split, tuple(items[:max_items]), str(path), file_sha256(path))

    def build_messages(self, item: TaskItem, context: str = "") -> list[dict[str, str]]:
        advice = f"\n\nAdvice: {context}" if context else ""
        return [{"role": "system", "content": "Answer with 'The answer is N'."},
                {"role": "user", "content": f"Question: {item.text}{advice}"}]

    def score(self, item: TaskItem, response: str) -> Score:
        answer = extract_numeric_answer(response)
        right = numbers_match(answer, item.gold)
        return Score(answer, right, float(right))


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: %(default)s)")
parser.add_argument("--data", default=None,
                    help="a JSONL file of {question, answer} records (default: a small one it writes)")
args = parser.parse_args()
data = args.data
if data is None:
    data = str(Path(tempfile.mkdtemp()) / "conversions.jsonl")
    Path(data).write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in EXAMPLES))

# One line registers it: gym.make and gym.make_vec now build it, with these default arguments.
persuasion_gym.register_env("Persuasion-Conversions-v0", ConversionTask(), data_path=data, featurizer="hashed")

env = gym.make("Persuasion-Conversions-v0", receiver=args.receiver)
obs, info = env.reset(seed=0)
_, reward, _, _, step = env.step(1)
print(f"{info['question']} -> {step['answer']} (gold {info['gold']}), reward {reward}")

envs = gym.make_vec("Persuasion-Conversions-v0", num_envs=3, receiver=args.receiver)
envs.reset(seed=0)
_, rewards, _, _, _ = envs.step(np.array([0, 1, 2]))
print(f"vector env, one signal each: rewards {rewards.tolist()}")
envs.close()
env.close()
