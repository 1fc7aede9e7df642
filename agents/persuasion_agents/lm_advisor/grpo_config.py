"""The settings of an LM Advisor training run and the TRL ``GRPOConfig`` they make: the run's
defaults, a user's GRPOConfig fields over them (``AdvisorTraining.extra``, ``--trl KEY=VALUE``),
only fields the installed TRL and transformers have, the training precision, and the sampling
distribution recorded in the Advisor's template."""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persuasion_agents.lm_advisor.model import LMAdvisor
from persuasion_gym.errors import ConfigError

DTYPES = ("auto", "bfloat16", "float16", "float32")
INSTALL_HINT = "the LM Advisor's training needs TRL: pip install 'persuasion-gym[advisor]'"
# The GRPOConfig fields of the sampling distribution, recorded in the Advisor's template.
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


@dataclass
class AdvisorTraining:
    """Settings of one training run (recorded in ``OUT/training.json``)."""

    # The help is the command line's too (persuasion_agents.commands builds its flags from it).
    steps: int = field(default=20, metadata={"help": "GRPO steps", "min": 1})
    items_per_step: int = field(default=2, metadata={"help": "task items per GRPO step", "min": 1})
    num_generations: int = field(default=4, metadata={"help": "signals sampled per item (the group baseline)",
                                                      "min": 1})
    beta: float = field(default=0.04, metadata={"help": "KL weight to the starting model"})
    learning_rate: float = field(default=1e-5, metadata={"help": "the optimizer's learning rate"})
    temperature: float = field(default=1.0, metadata={"help": "the temperature GRPO samples the signals at"})
    save_steps: int = field(default=10, metadata={"help": "steps between checkpoints", "min": 1})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (peft) instead of every weight"})
    lora_rank: int = field(default=8, metadata={"help": "the LoRA adapters' rank (their alpha is twice it)"})
    seed: int = field(default=0, metadata={"help": "the random seed"})
    dtype: str = field(default="auto", metadata={
        "help": "training precision (mixed, float32 weights): auto is bfloat16 on a CUDA GPU that has it, float32 on "
                "the CPU", "choices": DTYPES})
    extra: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "any GRPOConfig fields: they win over the settings above"})

    def signals_written(self) -> int:
        """How many signals (so Receiver calls, at most) one process samples in the run's
        ``steps`` optimizer steps: TRL generates per_device_train_batch_size x
        gradient_accumulation_steps completions a step, each batch reused num_iterations times."""
        per_device = int(self.extra.get("per_device_train_batch_size", self.items_per_step * self.num_generations))
        accumulation = int(self.extra.get("gradient_accumulation_steps", 1))
        iterations = int(self.extra.get("num_iterations", 1))
        return -(-self.steps * per_device * accumulation // iterations)


def resolve_dtype(requested: str, device_type: str, bf16_supported: bool) -> str:
    """The training precision for ``requested`` (one of ``DTYPES``) on a device of
    ``device_type`` (``"cuda"``, ``"cpu"``, ...): ``auto`` is bfloat16 on a CUDA device that
    supports it, else float32. float16 needs CUDA; bfloat16 on CUDA needs a device that has it."""
    if requested not in DTYPES:
        raise ConfigError(f"unknown dtype {requested!r}: use one of {', '.join(DTYPES)}")
    if requested == "auto":
        return "bfloat16" if device_type == "cuda" and bf16_supported else "float32"
    if requested == "float16" and device_type != "cuda":
        raise ConfigError(f"float16 training needs a CUDA device; the Advisor is on {device_type}: "
                          "use --dtype float32 (or bfloat16)")
    if requested == "bfloat16" and device_type == "cuda" and not bf16_supported:
        raise ConfigError("this CUDA device has no bfloat16: use --dtype float16 or float32")
    return requested


def _advisor_dtype(requested: str, device: str) -> str:
    import torch

    device_type = torch.device(device).type
    bf16 = device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return resolve_dtype(requested, device_type, bf16)


def trl_module() -> Any:
    """TRL, or a ConfigError saying how to install it."""
    try:
        import trl
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return trl


def grpo_fields() -> dict[str, dataclasses.Field]:
    """The installed ``GRPOConfig``'s fields, by name."""
    return {f.name: f for f in dataclasses.fields(trl_module().GRPOConfig) if f.init}


def check_grpo_fields(names: Iterable[str], fields: Mapping[str, Any] | None = None) -> None:
    """A ConfigError naming the first name that is no field of the installed ``GRPOConfig``,
    with the closest field."""
    fields = grpo_fields() if fields is None else fields
    for name in names:
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.5)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{name!r} is not a GRPOConfig field (TRL {trl_module().__version__}){hint}")


def _kinds(annotation: Any) -> set[Any]:
    """The plain types a field's annotation admits (``int | None`` -> {int, None}); empty when unknown."""
    if isinstance(annotation, str):  # a postponed annotation: read the names
        names = {"bool": bool, "int": int, "float": float, "str": str, "dict": dict, "list": list, "None": None}
        return {kind for name, kind in names.items() if name in annotation}
    if annotation is None or annotation is type(None):
        return {None}
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_kinds(arg) for arg in typing.get_args(annotation)))
    if origin in (dict, list, tuple):
        return {dict if origin is dict else list}
    return {annotation} if annotation in (bool, int, float, str, dict, list) else set()


def _parse_value(name: str, text: str, annotation: Any) -> Any:
    kinds = _kinds(annotation) or {None, bool, int, float, dict, list, str}  # unknown: the first that reads
    word = text.strip().lower()
    if None in kinds and word in ("none", "null"):
        return None
    if bool in kinds and word in ("true", "false", "yes", "no"):
        return word in ("true", "yes")
    for kind in (int, float):
        if kind in kinds:
            try:
                return kind(text)
            except ValueError:
                pass
    if kinds & {dict, list} and text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--trl {name}={text}: not valid JSON ({exc})") from None
    if str in kinds:
        return text
    wanted = " or ".join(sorted("None" if k is None else k.__name__ for k in kinds))
    raise ConfigError(f"--trl {name}={text}: {name} takes {wanted}")


def parse_grpo_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--trl``) as GRPOConfig settings, each value read as its field's
    type (int, float, bool, None, JSON for dicts and lists, else the string). An unknown key is
    a ConfigError naming it and the closest field."""
    fields = grpo_fields()
    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise ConfigError(f"--trl {pair!r}: write KEY=VALUE, e.g. --trl gradient_accumulation_steps=4")
        check_grpo_fields([key], fields)
        options[key] = _parse_value(key, value, fields[key].type)
    return options


def grpo_settings(settings: AdvisorTraining, advisor: LMAdvisor, out: str | Path, report_to: str = "tensorboard",
                  fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of the run's ``GRPOConfig``: this run's defaults, then
    ``settings.extra`` over them (a user's settings win). Only fields the installed TRL and
    transformers have are set (``activation_checkpointing`` is ``gradient_checkpointing`` before
    transformers 5.23)."""
    import torch

    fields = grpo_fields() if fields is None else fields
    check_grpo_fields(settings.extra, fields)
    dtype = _advisor_dtype(settings.dtype, advisor.device)
    defaults: dict[str, Any] = dict(
        output_dir=str(out), max_steps=settings.steps,
        per_device_train_batch_size=settings.items_per_step * settings.num_generations,
        num_generations=settings.num_generations, max_completion_length=advisor.template.max_new_tokens,
        temperature=settings.temperature, top_k=0, top_p=1.0, beta=settings.beta, learning_rate=settings.learning_rate,
        logging_steps=1, save_steps=settings.save_steps, save_total_limit=2, report_to=[report_to] if report_to else [],
        # The Trainer moves the model to the accelerator unless told: an Advisor on the CPU stays there.
        use_cpu=torch.device(advisor.device).type == "cpu", bf16=dtype == "bfloat16", fp16=dtype == "float16",
        disable_dropout=True,  # the policy trained is the one written with (eval mode): no dropout in either
        seed=settings.seed, data_seed=settings.seed, disable_tqdm=True, remove_unused_columns=False,
    )
    checkpointing = ("activation_checkpointing", "gradient_checkpointing")
    if not any(name in settings.extra for name in checkpointing):  # small Advisors: speed over memory
        defaults[next(name for name in checkpointing if name in fields)] = False
    return {**{k: v for k, v in defaults.items() if k in fields}, **settings.extra}


def grpo_config(settings: AdvisorTraining, advisor: LMAdvisor, out: str | Path, report_to: str = "tensorboard") -> Any:
    """The run's ``GRPOConfig`` (``grpo_settings``)."""
    return trl_module().GRPOConfig(**grpo_settings(settings, advisor, out, report_to))


def record_sampling(advisor: LMAdvisor, config: Any) -> None:
    """Write the GRPOConfig's sampling distribution into the Advisor's template: what
    ``write(sample=True)`` samples from and ``log_likelihoods`` scores at (its temperature)."""
    values = {name: getattr(config, name) for name in SAMPLING_FIELDS if hasattr(config, name)}
    values["top_k"] = values.get("top_k") or 0  # None and 0: no cut
    extra = dict(getattr(config, "generation_kwargs", None) or {})
    advisor.info.template = dataclasses.replace(advisor.template, max_new_tokens=int(config.max_completion_length),
                                                generation_kwargs=extra, **values)
