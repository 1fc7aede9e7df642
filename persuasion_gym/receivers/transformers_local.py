"""A Receiver that runs a causal language model in-process with ``transformers``.

Sources: a Hugging Face model id, a local model directory, or a GGUF file (dequantised by
transformers; needs ``gguf``). Prompts go through the model's chat template and are generated
in batches with left padding. Each loaded model is shared by every Receiver of the process
that names it, so N envs of a vector env hold one copy.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from persuasion_gym.errors import ConfigError, ReceiverError, ReceiverUnavailableError
from persuasion_gym.receivers.base import OnTruncated, Receiver
from persuasion_gym.receivers.cache import ResponseCache
from persuasion_gym.receivers.reasoning import split_reasoning
from persuasion_gym.receivers.response import Request, Response, Usage

INSTALL_HINT = "pip install 'persuasion-gym[local]' (transformers, torch, gguf, accelerate)"

_MODELS: dict[tuple, tuple[Any, Any]] = {}
_MODELS_LOCK = threading.Lock()
_FINGERPRINTS: dict[tuple[str, float], str] = {}


def loaded_models() -> int:
    """How many models this process holds (each is loaded once, however many Receivers use it)."""
    return len(_MODELS)


def _fingerprint(path: Path) -> str:
    """A short content hash, so the cache tells apart two files or folders of the same name."""
    key = (str(path), path.stat().st_mtime)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(file.name.encode())
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
        _FINGERPRINTS[key] = digest.hexdigest()[:16]
    return _FINGERPRINTS[key]


class TransformersReceiver(Receiver):
    """Chat responses from a local causal LM.

    Args:
        model: a hub id (``"Qwen/Qwen2.5-0.5B-Instruct"``), a model directory, or a ``.gguf`` file.
        temperature: 0 for greedy decoding, else sampling (with ``top_p``).
        max_new_tokens: the response budget; generation stops earlier at EOS.
        seed: seeds sampling. A sampled response depends on the seed and on the batch it was
            generated in; the response cache makes every replay exact.
        batch_size: prompts per forward pass (similar lengths are batched together).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``.
        dtype: ``"auto"`` (float32 on CPU, bfloat16 on CUDA) or a torch dtype name.
        threads: CPU threads for torch (default: torch's choice).
        enable_thinking: for chat templates that think (Qwen3's), turn thinking on or off;
            None leaves the template's default. The thinking is kept apart from the answer
            either way (``Response.reasoning``), and only the answer is scored.
        on_truncated: ``"score"`` or ``"error"`` for an answer cut off at ``max_new_tokens``.
    """

    kind = "transformers"

    def __init__(
        self,
        model: str,
        temperature: float = 0.0,
        max_new_tokens: int = 256,
        top_p: float | None = None,
        seed: int = 0,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        threads: int | None = None,
        enable_thinking: bool | None = None,
        on_truncated: OnTruncated = "score",
        cache: ResponseCache | str | Path | bool | None = True,
        price_in: float = 0.0,
        price_out: float = 0.0,
    ):
        super().__init__(cache, price_in, price_out, on_truncated)
        if enable_thinking not in (None, True, False):
            raise ConfigError(f"enable_thinking={enable_thinking!r}: pass true or false")
        self.enable_thinking = enable_thinking
        try:
            import torch
            import transformers  # noqa: F401
        except ImportError:
            raise ReceiverUnavailableError(f"a local Receiver needs transformers and torch: {INSTALL_HINT}") from None
        if batch_size < 1 or max_new_tokens < 1:
            raise ConfigError(f"batch_size={batch_size}, max_new_tokens={max_new_tokens}: both must be at least 1")
        self.source = model
        path = Path(model).expanduser()
        looks_local = path.suffix == ".gguf" or model.startswith((".", "/", "~")) or path.exists()
        if looks_local and not path.exists():
            raise ReceiverUnavailableError(f"no model at {path}: pass an existing directory or .gguf file, or a hub id")
        self.path = path if path.exists() else None
        if self.path is not None and self.path.suffix == ".gguf":
            try:
                import gguf  # noqa: F401
            except ImportError:
                raise ReceiverUnavailableError(f"loading a GGUF file needs the gguf package: {INSTALL_HINT}") from None
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.dtype = ("bfloat16" if self.device.startswith("cuda") else "float32") if dtype == "auto" else dtype
        if not isinstance(getattr(torch, self.dtype, None), torch.dtype):
            raise ConfigError(f"dtype={dtype!r} is not a torch dtype: use 'auto', 'float32', 'bfloat16' or 'float16'")
        self.temperature, self.max_new_tokens, self.top_p, self.seed = temperature, max_new_tokens, top_p, seed
        self.batch_size, self.threads = batch_size, threads
        self.model_name = model if self.path is None else f"{self.path.name}@{_fingerprint(self.path)}"

    @property
    def identity(self) -> dict[str, Any]:
        identity = {
            "kind": self.kind,
            "model": self.model_name,
            "dtype": self.dtype,
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
        }
        if self.enable_thinking is not None:  # absent when unset: the identity stays as before
            identity["enable_thinking"] = self.enable_thinking
        return identity

    @property
    def completion_budget(self) -> int | None:
        return self.max_new_tokens

    @property
    def budget_option(self) -> str:
        return "max_new_tokens="

    @property
    def dispatch(self) -> tuple[int, int]:
        return self.batch_size, 1  # whole batches, one at a time: the model is the bottleneck

    def __repr__(self) -> str:
        return f"TransformersReceiver(model={self.model_name!r}, device={self.device!r})"

    # -- loading, once per process and model -------------------------------------------------
    def load(self) -> tuple[Any, Any]:
        """The (model, tokenizer) pair, loaded on first use and shared within the process."""
        key = (self.source, self.device, self.dtype)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS[key] = self._load()
        return _MODELS[key]

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.path is not None and self.path.suffix == ".gguf":
            where, extra = str(self.path.parent), {"gguf_file": self.path.name}
        else:
            where, extra = str(self.path or self.source), {}
        options: dict[str, Any] = {"dtype": getattr(torch, self.dtype), **extra}
        if self.device.startswith("cuda"):
            options["device_map"] = self.device
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, **extra)
            model = AutoModelForCausalLM.from_pretrained(where, **options)
        except (OSError, ValueError) as exc:
            raise ReceiverUnavailableError(
                f"could not load model {self.source!r} ({type(exc).__name__}: {str(exc)[:200]}); "
                "offline, pass a local directory or .gguf file"
            ) from None
        if not self.device.startswith("cuda"):
            # transformers types to() as functools.wraps(torch.nn.Module.to): the unbound signature.
            model.to(self.device)  # type: ignore[arg-type]
        model.eval()
        tokenizer.padding_side = "left"  # generation continues every row from its last token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if not tokenizer.chat_template:
            raise ConfigError(f"model {self.source!r} has no chat template: use an instruct/chat model")
        return model, tokenizer

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: list[Request]) -> Iterator[tuple[int, Response | ReceiverError]]:
        import time

        import torch

        model, tokenizer = self.load()
        template: dict[str, Any] = {} if self.enable_thinking is None else {"enable_thinking": self.enable_thinking}
        texts = [tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False, **template)
                 for r in requests]
        # Batch prompts of similar length together: less padding, less wasted compute.
        order = sorted(range(len(requests)), key=lambda i: len(texts[i]))
        stops = self._stop_ids(model, tokenizer)
        sampling = self.temperature > 0
        options: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": sampling,
                                   "pad_token_id": tokenizer.pad_token_id, "eos_token_id": sorted(stops)}
        if sampling:
            options["temperature"] = self.temperature
            if self.top_p is not None:
                options["top_p"] = self.top_p
        else:  # silence the model's own sampling defaults under greedy decoding
            options.update(temperature=None, top_p=None, top_k=None)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            began = time.perf_counter()
            try:
                # A private RNG state: seeding here must not disturb the caller's torch RNG (PPO's).
                with torch.random.fork_rng(devices=[]), torch.inference_mode():
                    torch.manual_seed(self.seed + 1_000_003 * requests[chunk[0]].sample)
                    output = model.generate(**batch, **options)
            except (RuntimeError, ValueError) as exc:
                for i in chunk:
                    yield i, ReceiverError(f"generation failed for model {self.model_name}: {str(exc)[:300]}")
                continue
            latency = time.perf_counter() - began
            prompt_width = batch["input_ids"].shape[1]
            for row, i in enumerate(chunk):
                tokens = output[row, prompt_width:].tolist()
                stop = next((k + 1 for k, t in enumerate(tokens) if t in stops), None)
                length = len(tokens) if stop is None else stop
                answer, reasoning = split_reasoning(tokenizer.decode(tokens[:length], skip_special_tokens=True))
                thought = len(tokenizer(reasoning, add_special_tokens=False)["input_ids"]) if reasoning else 0
                usage = Usage(int(batch["attention_mask"][row].sum()), length, thought)
                # generate() runs until every row stops or the budget is spent: no stop, no budget left.
                finish = "length" if stop is None else "stop"
                yield i, Response(answer.strip(), usage, latency, reasoning=reasoning, finish_reason=finish)

    @staticmethod
    def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
        configured = model.generation_config.eos_token_id
        stops = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
        if tokenizer.eos_token_id is not None:
            stops.add(tokenizer.eos_token_id)
        return stops
