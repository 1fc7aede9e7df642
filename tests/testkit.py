"""What the tests share (as Gymnasium's tests/testing_env.py): the repository's paths, reading
the package's prompts back in scripted servers, a free port, response tables built from the real
GSM8K items and chosen scores, and tiny LM Advisors built from a config, offline. Fixtures are
in conftest.py; tests import helpers from here, never from one another."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import numpy as np

from persuasion_gym.tables import ResponseTable
from persuasion_gym.tasks import Dataset, GSM8KTask

REPO = Path(__file__).resolve().parents[1]
GSM8K_DIR = REPO.parent / "shared" / "data" / "gsm8k"


# -- the package's prompts, read back by scripted servers -------------------------------------------------------

def question_of(messages: list[dict[str, str]]) -> str:
    user = messages[-1]["content"]
    return re.match(r"Question: (.*?)(?:\n\nAdvice: .*)?$", user, re.S).group(1)


def advice_of(messages: list[dict[str, str]]) -> str:
    found = re.search(r"\n\nAdvice: (.*)$", messages[-1]["content"], re.S)
    return found.group(1) if found else ""


def free_port() -> int:
    """A port nothing listens on (for "cannot reach" errors and servers started by number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- response tables ----------------------------------------------------------------------------------------------

def synthetic_table(dataset: Dataset, signals: list[str], scores: np.ndarray) -> ResponseTable:
    """A table whose cell (i, k, s) scored ``scores[i, k, s]`` (responses say so)."""
    n, k, s = scores.shape
    responses = [[[f"The answer is {d.gold if scores[i, j, t] >= 1 else -1}." for t in range(s)]
                  for j in range(k)] for i, d in enumerate(dataset.items)]
    answers = [[[d.gold if scores[i, j, t] >= 1 else "-1" for t in range(s)] for j in range(k)]
               for i, d in enumerate(dataset.items)]
    meta = {"task": dataset.name, "env_id": None, "receiver": {"kind": "synthetic"}, "samples": s,
            "dataset": {"name": dataset.name, "split": dataset.split, "source": dataset.source,
                        "sha256": dataset.sha256, "n_items": n},
            "package_version": "test", "created": "2026-01-01T00:00:00+00:00"}
    return ResponseTable(meta=meta, item_ids=[d.item_id for d in dataset.items], item_texts=dataset.texts,
                         golds=[d.gold for d in dataset.items], signals=list(signals),
                         scores=scores.astype(np.float32), prompt_tokens=np.full(scores.shape, 50, np.int32),
                         completion_tokens=np.full(scores.shape, 6, np.int32),
                         latency_s=np.full(scores.shape, 0.5, np.float32), responses=responses, answers=answers)


def rule_tables(folder: Path) -> tuple[Path, Path]:
    """Train and test tables (the whole GSM8K splits, 7473 and 500 items) where "how many"
    questions need signal 1 and the others signal 2."""
    def build(split: str, n: int) -> Path:
        items = GSM8KTask().load(split, max_items=n)
        scores = np.zeros((n, 4, 1), np.float32)
        best = [1 if "how many" in item.text.lower() else 2 for item in items.items]
        scores[np.arange(n), best, 0] = 1
        path = folder / f"{split}.npz"
        synthetic_table(items, ["", "hint one", "hint two", "hint three"], scores).save(path)
        return path
    return build("train", 7473), build("test", 500)


def rule_table(split: str, n: int, path: Path, noise: float = 0.2, seed: int = 0,
               signals: tuple[str, ...] = ("", "one", "two", "three")) -> Path:
    """"how many" questions need signal 1, the others signal 2; other cells right at ``noise``."""
    items = GSM8KTask().load(split, str(GSM8K_DIR), max_items=n)  # module fixtures run before _isolated
    scores = (np.random.default_rng(seed).random((n, 4, 1)) < noise).astype(np.float32)
    best = [1 if "how many" in item.text.lower() else 2 for item in items.items]
    scores[np.arange(n), best, 0] = 1
    synthetic_table(items, list(signals), scores).save(path)
    return path


# -- tiny LM Advisors ---------------------------------------------------------------------------------------------

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
          "Convert hours to minutes first. Write an equation. Check the units. Think step by step.",
          "How many dollars does she have left? A zoo has 12 zebras and 7 lizards; buzz, fizz, jazz, pizza.",
          "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()-+*/=$%"] * 40


def build_tiny_advisor(path: Path, *, bos: bool = False, chat_template: str | None = CHATML, seed: int = 0,
                       **config) -> Path:
    """A tiny causal LM Advisor saved to ``path``, offline: a byte-level BPE tokenizer trained
    here (512 tokens, a ChatML template) and a 2-layer Llama, fast enough to train in tests.
    ``bos`` gives the tokenizer a BOS token ``<s>``
    that it puts before every text it encodes (as Llama's and Gemma's do), ``chat_template``
    None makes it a base model; ``config`` goes to the LlamaConfig (``attention_dropout=0.5``)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", *(["<s>"] if bos else [])],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    if bos:
        bpe.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", bpe.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>" if bos else "<|im_start|>",
                                        eos_token="<|im_end|>", pad_token="<pad>", unk_token="<|endoftext|>")
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True, **config))
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def favour_newlines(advisor: Any, bonus: float = 6.0) -> None:
    """Make the model write line breaks often (its newline logit raised), so that most
    completions would run past their first line."""
    newline = advisor.tokenizer.convert_tokens_to_ids("Ċ")  # the byte-level newline

    def hook(module, inputs, logits):
        logits = logits.clone()
        logits[..., newline] += bonus
        return logits

    advisor.model.lm_head.register_forward_hook(hook)


def recorded_generate(model, calls: list):
    """Wrap ``model.generate`` to keep each call's prompt rows (padding removed) and outputs."""
    original = model.generate

    def generate(*args, **kwargs):
        output = original(*args, **kwargs)
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        calls.append({"prompts": [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)],
                      "completions": output[:, ids.shape[1]:].tolist()})
        return output

    model.generate = generate
