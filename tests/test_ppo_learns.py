"""PPO learns a real signaling policy against a scripted Receiver (through real HTTP).

The Receiver is right on "how many" questions only with hint A and on all other questions
only with hint B, so any single fixed signal gets about half right, while a policy that reads
the question can get everything right, on questions it has never seen.
"""

import gymnasium as gym
import pytest

from persuasion_agents import accuracy, baseline_actions, greedy_actions, train_ppo
from persuasion_gym.signals import MATH_SIGNALS

from testkit import advice_of, question_of

HINT_A, HINT_B = MATH_SIGNALS[1], MATH_SIGNALS[5]


@pytest.mark.slow
def test_ppo_reaches_90_percent_on_held_out_questions(make_server, gold_by_question):
    def reply(messages):
        question, advice = question_of(messages), advice_of(messages)
        gold = gold_by_question[question]
        needed = HINT_A if "how many" in question.lower() else HINT_B
        return f"The answer is {gold}." if advice == needed else f"The answer is {float(gold) + 1:g}."

    server = make_server(reply)
    kwargs = dict(receiver=f"openai:scripted@{server.url}", featurizer="hashed")
    train = lambda: gym.make("Persuasion-GSM8K-v0", split="train", max_items=2000, **kwargs)  # noqa: E731
    test_env = gym.make("Persuasion-GSM8K-v0", split="test", max_items=200, **kwargs)

    fixed = [accuracy(test_env, [a] * 200) for a in range(len(MATH_SIGNALS))]
    assert max(fixed) <= 0.6, fixed

    model = train_ppo(train, total_timesteps=12_000, n_envs=4, seed=0)
    learned = accuracy(test_env, greedy_actions(model, test_env.unwrapped.features))
    baselines = {name: accuracy(test_env, acts) for name, acts in baseline_actions(test_env).items()}
    assert learned >= 0.9, (learned, baselines, fixed)
    assert baselines["no signal"] == 0.0 and baselines["random signal"] < 0.4
