"""LMAdvisor.log_likelihoods against a plain computation: one unpadded forward pass per
(question, item, signal) triple, summing log p(token | prompt, earlier signal tokens) over exactly
the signal's tokens."""

import numpy as np
import pytest
import torch

from persuasion_agents.lm_advisor import AdvisorInfo, LMAdvisor

from testkit import build_tiny_advisor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

NATALIA = "Natalia sold clips to 48 of her friends in April. How many clips did she sell?"
QUESTIONS = [NATALIA, "A zoo has 12 zebras and 7 lizards. How many animals?", NATALIA, NATALIA]  # repeats
SIGNALS = ["Convert hours to minutes first. Write an equation, then check the units.", "Why?", "", "Check units."]
ITEMS = ["", "Think", "Think step by step.", "Convert hours to minutes first."]  # one a prefix of another


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_advisor(tmp_path_factory.mktemp("tiny-ll") / "advisor")


def load(tiny_dir, *, bos=False, chat=True, padding_side="left", **config):
    from tokenizers import processors
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    if bos:  # a tokenizer that puts its BOS before every text it encodes with special tokens
        bos_id = tokenizer.bos_token_id
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{tokenizer.bos_token} $A", special_tokens=[(tokenizer.bos_token, bos_id)])
        assert tokenizer("Why?")["input_ids"][0] == bos_id
    if not chat:
        tokenizer.chat_template = None
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32, **config)
    advisor = LMAdvisor(model, tokenizer, AdvisorInfo(str(tiny_dir)), device="cpu")
    advisor.tokenizer.padding_side = padding_side
    return advisor


def by_hand(advisor, question, item, signal, temperature=1.0):
    """One unpadded forward pass over prompt + signal; the signal's tokens' log-probabilities summed."""
    prompt = advisor.tokenizer(advisor.prompt(question, item))["input_ids"]  # as write() and training read it
    tokens = advisor.tokenizer(signal, add_special_tokens=False)["input_ids"] if signal else []
    bos = advisor.tokenizer.bos_token_id
    assert prompt[:2] != [bos, bos] and (prompt[0] == bos or not advisor.adds_bos) and bos not in tokens
    if not tokens:
        return 0.0
    modes = [(module, module.training) for module in advisor.model.modules()]
    advisor.model.eval()
    with torch.no_grad():
        logits = advisor.model(input_ids=torch.tensor([prompt + tokens])).logits[0].float() / temperature
    for module, training in modes:
        module.training = training
    logp = torch.log_softmax(logits, dim=-1)
    return sum(float(logp[len(prompt) - 1 + t, token]) for t, token in enumerate(tokens))


def expected(advisor, questions, signals, items, temperature=1.0):
    return np.array([[by_hand(advisor, q, x, s, temperature) for x in items]
                     for q, s in zip(questions, signals, strict=True)])


@pytest.mark.parametrize("bos, chat, padding_side", [(False, True, "left"), (True, True, "right"),
                                                     (True, False, "left"), (False, False, "right")])
def test_log_likelihoods_are_the_signal_tokens_log_probabilities(tiny_dir, bos, chat, padding_side):
    advisor = load(tiny_dir, bos=bos, chat=chat, padding_side=padding_side)
    got = advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS)
    assert got.shape == (4, 4)
    np.testing.assert_allclose(got, expected(advisor, QUESTIONS, SIGNALS, ITEMS), rtol=0, atol=1e-4)
    assert (got[[0, 1, 3]] < 0).all() and (got[2] == 0).all()  # an empty signal has no tokens to score
    # Signals of different lengths in one batch, a lone item (its whole prompt shared), a lone signal.
    lone = advisor.log_likelihoods(QUESTIONS[1:2], SIGNALS[1:2], ITEMS[2:3])
    np.testing.assert_allclose(lone, expected(advisor, QUESTIONS[1:2], SIGNALS[1:2], ITEMS[2:3]), atol=1e-4)
    assert advisor.log_likelihoods(QUESTIONS, SIGNALS, []).shape == (4, 0)


def test_eager_attention_reads_the_packed_mask_as_sdpa_does(tiny_dir):
    advisor = load(tiny_dir, attn_implementation="eager")
    assert advisor.model.config._attn_implementation == "eager"
    got = advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS, batch_size=5)
    np.testing.assert_allclose(got, expected(advisor, QUESTIONS, SIGNALS, ITEMS), rtol=0, atol=1e-4)


def test_the_temperature_scales_the_logits(tiny_dir):
    advisor = load(tiny_dir)
    got = advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS, temperature=0.7)
    np.testing.assert_allclose(got, expected(advisor, QUESTIONS, SIGNALS, ITEMS, temperature=0.7), atol=1e-4)
    assert not np.allclose(got, advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS), atol=1e-3)
    advisor.template.temperature = 0.7  # the Advisor's sampling temperature is the default
    np.testing.assert_array_equal(advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS), got)
    with pytest.raises(ValueError, match="temperature"):
        advisor.log_likelihoods(QUESTIONS[:1], SIGNALS[:1], ITEMS, temperature=0)


def test_the_batch_size_does_not_change_the_numbers(tiny_dir):
    advisor = load(tiny_dir)
    questions, signals = QUESTIONS * 2, SIGNALS + ["Is it 5?", "abc", "", "Check the units. Think step by step."]
    one = advisor.log_likelihoods(questions, signals, ITEMS, batch_size=1)
    seven = advisor.log_likelihoods(questions, signals, ITEMS, batch_size=7)
    np.testing.assert_allclose(one, seven, rtol=0, atol=1e-5)
    advisor.likelihood_batch_size = 7  # the default for callers that give none, such as the posterior protocol
    np.testing.assert_array_equal(advisor.log_likelihoods(questions, signals, ITEMS), seven)
    with pytest.raises(ValueError, match="batch_size"):
        advisor.log_likelihoods(questions, signals, ITEMS, batch_size=0)


def test_scoring_runs_in_eval_mode_and_leaves_the_mode_it_found(tiny_dir):
    advisor = load(tiny_dir, attention_dropout=0.5)
    model = advisor.model
    ids = torch.tensor([advisor.tokenizer(advisor.prompt(QUESTIONS[0], ITEMS[2]))["input_ids"]])
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)  # dropout is on
    first = advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS)
    second = advisor.log_likelihoods(QUESTIONS, SIGNALS, ITEMS)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, expected(advisor, QUESTIONS, SIGNALS, ITEMS), atol=1e-4)
    assert all(m.training for m in model.modules())
    # A mixed state comes back as it was, module by module.
    model.model.layers[0].eval()
    advisor.log_likelihoods(QUESTIONS[:1], SIGNALS[:1], ITEMS)
    assert not any(m.training for m in model.model.layers[0].modules())
    assert model.training and model.model.layers[1].training
    model.eval()
    advisor.log_likelihoods(QUESTIONS[:1], SIGNALS[:1], ITEMS)
    assert not any(m.training for m in model.modules())
