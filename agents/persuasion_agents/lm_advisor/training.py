"""Training the LM Advisor by policy gradient on the Receiver's rewards, with TRL's GRPO.

Objective: E_q E_{g ~ pi_phi}[R(q, g)] - beta KL(pi_phi || pi_ref). Each step samples
``num_generations`` signals for each of ``items_per_step`` items; the group's mean reward is
the baseline (GRPO). The rewards are scored Receiver answers (``PersuasionReward``), one
concurrent, cached batch per step. The starting model is saved to ``OUT/start`` first (with
its source and weights hash in ``OUT/start/reference.json``): TRL rebuilds the reference model
from the model's path when ``beta > 0``, and nothing may need the hub. Checkpoints go to
``OUT/checkpoint-N``; ``resume=True`` continues from the last.

What is trained is what is evaluated: the prompts TRL encodes are ``LMAdvisor.encode_prompts``'
ids, each completion ends at the end of its first line (the signal the Receiver reads, all the
loss credits), the sampling settings of the GRPOConfig are recorded in the Advisor's template
(``write(sample=True)`` and ``log_likelihoods`` use them), dropout is off while training
(``disable_dropout``) and the trained model is left in eval mode.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import shutil
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from persuasion_agents.lm_advisor.model import ADVISOR_FILE, LMAdvisor, first_line_length
from persuasion_agents.lm_advisor.reward import PersuasionReward
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError, ReceiverError
from persuasion_gym.persuasion import TextPosteriorProtocol

if TYPE_CHECKING:
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

DTYPES = ("auto", "bfloat16", "float16", "float32")
REFERENCE_FILE = "reference.json"  # in OUT/start: the source and weights hash of the model training started from
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


def _trl() -> Any:
    try:
        import trl
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return trl


def grpo_fields() -> dict[str, dataclasses.Field]:
    """The installed ``GRPOConfig``'s fields, by name."""
    return {f.name: f for f in dataclasses.fields(_trl().GRPOConfig) if f.init}


def check_grpo_fields(names: Iterable[str], fields: Mapping[str, Any] | None = None) -> None:
    """A ConfigError naming the first name that is no field of the installed ``GRPOConfig``,
    with the closest field."""
    fields = grpo_fields() if fields is None else fields
    for name in names:
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.5)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{name!r} is not a GRPOConfig field (TRL {_trl().__version__}){hint}")


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
    return _trl().GRPOConfig(**grpo_settings(settings, advisor, out, report_to))


def record_sampling(advisor: LMAdvisor, config: Any) -> None:
    """Write the GRPOConfig's sampling distribution into the Advisor's template: what
    ``write(sample=True)`` samples from and ``log_likelihoods`` scores at (its temperature)."""
    values = {name: getattr(config, name) for name in SAMPLING_FIELDS if hasattr(config, name)}
    values["top_k"] = values.get("top_k") or 0  # None and 0: no cut
    extra = dict(getattr(config, "generation_kwargs", None) or {})
    advisor.info.template = dataclasses.replace(advisor.template, max_new_tokens=int(config.max_completion_length),
                                                generation_kwargs=extra, **values)


def last_checkpoint(out: Path) -> Path | None:
    """The last ``checkpoint-N`` in ``out`` (transformers' ``get_last_checkpoint``)."""
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(out)) if out.is_dir() else None
    return Path(found) if found else None


def weights_sha256(model: Any) -> str:
    """A hash of a model's weights (names, dtypes, shapes and bytes of its state dict)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()


def _reference(start: Path, advisor: LMAdvisor, resuming: bool) -> None:
    """Make ``start`` hold the Advisor training starts from, the KL reference TRL reloads by
    path. One saved by an earlier run is reused only if it is this Advisor (the same source and
    weights); another is replaced when starting afresh, and a ConfigError when resuming (the
    checkpoints continue the other model)."""
    mine = {"source": advisor.info.source, "weights_sha256": weights_sha256(advisor.model)}
    if (start / ADVISOR_FILE).is_file():
        if (start / REFERENCE_FILE).is_file():
            saved = json.loads((start / REFERENCE_FILE).read_text())
        else:  # saved before the reference was recorded: hash its weights
            earlier = LMAdvisor.load(str(start), device="cpu")
            saved = {"source": earlier.info.source, "weights_sha256": weights_sha256(earlier.model)}
        if saved == mine:
            return
        what = "another source" if saved.get("source") != mine["source"] else "other weights"
        if resuming:
            raise ConfigError(
                f"{start} holds the model this run started from ({saved.get('source')!r}), and the Advisor given is "
                f"not it ({mine['source']!r}: {what}): to resume, pass the Advisor the run started from; to train "
                f"this one, use another --out (or delete {start.parent} to start afresh)")
        logger.warning("%s held another starting model (%s, %s): replaced by the Advisor being trained (%s)",
                       start, saved.get("source"), what, mine["source"])
        shutil.rmtree(start)
    advisor.save_pretrained(start)
    (start / REFERENCE_FILE).write_text(json.dumps(mine, indent=2))


def _finished(out: Path, checkpoint: Path | None, steps: int) -> dict[str, Any] | None:
    """The record of a run in ``out`` that already reached ``steps``, else None. (Resumed at
    its last step, the Trainer would run one step more.)"""
    if checkpoint is None or not (out / "training.json").is_file() or not (out / "advisor" / ADVISOR_FILE).is_file():
        return None
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    record = json.loads((out / "training.json").read_text())
    return record if state["global_step"] >= steps and record["steps"] >= steps else None


def training_dataset(env: PersuasionEnv, advisor: LMAdvisor, seed: int) -> Any:
    """The GRPO dataset: fixed prompts when the Advisor observes no item or exact states;
    under the text posterior without a state table, each fetch reads the env's estimate as it
    stands then (one x* per item and batch), so the prompts follow what the env learns."""
    from datasets import Dataset

    protocol = env.protocol
    if not isinstance(protocol, TextPosteriorProtocol) or protocol.estimate.given:
        return Dataset.from_list(training_rows(env, advisor, seed))
    rng, texts = np.random.default_rng(seed), env.dataset.texts

    def observe(batch: dict[str, list]) -> dict[str, list]:
        indices = np.asarray(batch["item_index"], dtype=np.int64)
        observed = env.observed_items(indices, rng)
        return {"prompt": [advisor.prompt(texts[i], x) for i, x in zip(indices, observed["observed_item"],
                                                                         strict=True)],
                "item_index": indices.tolist(), "observed_index": observed["observed_index"].tolist(),
                "observed_known": observed["observed_known"].tolist(),
                "observed_tie": observed["observed_tie"].tolist()}

    dataset = Dataset.from_dict({"item_index": list(range(len(env.dataset)))})
    dataset.set_transform(observe)
    return dataset


def training_rows(env: PersuasionEnv, advisor: LMAdvisor, seed: int) -> list[dict[str, Any]]:
    """One prompt per training item; under the text posterior, with the item x* it observes
    (exact from a state table, else the env's estimate or a draw from the prior). Prompts are
    texts, which TRL encodes as ``advisor.encode_prompts`` does."""
    indices = np.arange(len(env.dataset))
    observed = env.observed_items(indices, np.random.default_rng(seed))
    rows = []
    for i in indices:
        item = observed["observed_item"][i] if observed else None
        row: dict[str, Any] = {"prompt": advisor.prompt(env.dataset.items[i].text, item), "item_index": int(i)}
        if observed:
            row["observed_index"] = int(observed["observed_index"][i])
        rows.append(row)
    return rows


def first_line_trainer(base: type[Any]) -> type[Any]:
    """``base`` (TRL's ``GRPOTrainer``) with each completion cut at the end of its first line,
    where ``write`` stops: the tokens GRPO credits are the signal the Receiver reads. Whatever
    generates them (transformers, vLLM), the cut comes after, for every completion alike."""
    if not callable(getattr(base, "_generate_single_turn", None)):
        raise ConfigError(f"{base.__name__} has no _generate_single_turn, which TRL 1.x's GRPOTrainer has: "
                          "pip install 'trl>=1.0,<2'")

    class FirstLineGRPOTrainer(base):
        def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
            completion_ids, logprobs, *rest = super()._generate_single_turn(*args, **kwargs)
            lengths = [first_line_length(self.processing_class, ids) for ids in completion_ids]
            completion_ids = [list(ids[:n]) for ids, n in zip(completion_ids, lengths, strict=True)]
            if logprobs is not None:
                logprobs = [list(lp[:n]) for lp, n in zip(logprobs, lengths, strict=True)]
            return (completion_ids, logprobs, *rest)

    return FirstLineGRPOTrainer


def _progress(total: int, env: PersuasionEnv, disable: bool, curve: list[tuple[int, float]],
              ties: list[tuple[int, float]], spent: Callable[[], tuple[int, float]]) -> TrainerCallback:
    """A tqdm bar over training steps: mean reward, the share of groups whose signals were all
    rewarded alike (``tied``: GRPO learns nothing from them), this run's Receiver calls and cost
    (``spent``). Appends each logged (step, mean reward) to ``curve``, (step, tied share) to ``ties``."""
    from transformers import TrainerCallback

    class Callback(TrainerCallback):
        def __init__(self) -> None:
            self.bar: tqdm | None = None
            self.timing: list[dict[str, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = tqdm(total=total, initial=state.global_step, desc="training lm-advisor", unit="step",
                            disable=disable)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "reward" not in logs:
                return
            curve.append((state.global_step, float(logs["reward"])))
            receiver = env.receiver
            postfix = {"reward": f"{logs['reward']:.3f}"}
            if "frac_reward_zero_std" in logs:
                ties.append((state.global_step, float(logs["frac_reward_zero_std"])))
                postfix["tied"] = f"{logs['frac_reward_zero_std']:.0%}"
            if receiver is not None:
                calls, cost = spent()
                postfix["calls"] = f"{calls}"
                if receiver.price_in or receiver.price_out:
                    postfix["cost"] = f"${cost:.4f}"
            if self.bar is not None:
                self.bar.set_postfix(postfix, refresh=False)
                self.bar.n = state.global_step
                self.bar.refresh()

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    return Callback()


def nothing_learned(ties: list[tuple[int, float]]) -> int:
    """The steps in which every group tied (each item's signals rewarded alike)."""
    return sum(share >= 1.0 - 1e-9 for _, share in ties)


def train_lm_advisor(env: gym.Env, advisor: LMAdvisor | str, out: str | Path, settings: AdvisorTraining | None = None,
                     resume: bool = False, progress: bool = True, report_to: str = "tensorboard") -> dict[str, Any]:
    """Train an LM Advisor (or one loaded from ``embedded``, a hub id or a directory) against
    ``env``'s Receiver (an env made with ``action_type="text"``; under ``protocol="posterior"``
    the env's scheme becomes the Advisor being trained).
    Writes ``OUT/advisor`` (``LMAdvisor.load`` reads it), checkpoints, TensorBoard logs and
    ``OUT/training.json``; returns the training record. The Advisor is left in eval mode, on
    its device, with the run's sampling settings in its template."""
    from transformers.trainer_callback import PrinterCallback

    trl = _trl()
    settings = settings or AdvisorTraining()
    out = Path(out)
    core = cast(PersuasionEnv, env.unwrapped)
    source = advisor if isinstance(advisor, str) else advisor.info.source
    checkpoint = last_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        print(f"no checkpoint in {out}: starting afresh")
    finished = _finished(out, checkpoint, settings.steps)
    if finished is not None:
        print(f"{out / 'advisor'} has trained for {finished['steps']} steps already: nothing to do "
              "(raise the steps to train on)")
        if isinstance(advisor, LMAdvisor):  # the caller's Advisor becomes the trained one, as after training
            trained = LMAdvisor.load(str(out / "advisor"), device=advisor.device)
            advisor.model, advisor.info = trained.model, trained.info
            if isinstance(core.protocol, TextPosteriorProtocol):
                core.protocol.scheme = advisor
        return finished
    if isinstance(advisor, str):
        advisor = LMAdvisor.load(advisor)
    config = trl.GRPOConfig(**grpo_settings(settings, advisor, out, report_to))
    _reference(out / "start", advisor, resuming=checkpoint is not None)
    advisor.model.config._name_or_path = str(out / "start")  # TRL rebuilds the reference model from this path
    record_sampling(advisor, config)  # pi, as GRPO samples it: write(sample=True) and the scheme use it
    if isinstance(core.protocol, TextPosteriorProtocol):
        core.protocol.scheme = advisor  # the committed scheme is the Advisor being trained
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    reward = PersuasionReward(core, advisor.template, seed=settings.seed)
    curve: list[tuple[int, float]] = []
    ties: list[tuple[int, float]] = []
    # The Receiver may have served others before (a recording, an earlier run): count this run only.
    stats = core.receiver.stats if core.receiver is not None else None
    before = (stats.calls, stats.cost_usd) if stats else (0, 0.0)

    def spent() -> tuple[int, float]:
        return (stats.calls - before[0], stats.cost_usd - before[1]) if stats else (0, 0.0)

    bar = _progress(settings.steps, core, not progress, curve, ties, spent)
    # TRL types a reward function's result as an invariant list[float | None]; ours is list[float].
    trainer = first_line_trainer(trl.GRPOTrainer)(
        model=advisor.model, reward_funcs=reward, args=config,
        train_dataset=training_dataset(core, advisor, settings.seed),
        processing_class=advisor.tokenizer, peft_config=peft_config, callbacks=[bar])
    trainer.remove_callback(PrinterCallback)  # our bar shows the logs; TensorBoard keeps them all
    began = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except ReceiverError as exc:
        # A step's Receiver batch failed after its retries: GRPO cannot score that step. What
        # came back is cached and the checkpoints hold the steps before; say so, where it stopped.
        bar.on_train_end(config, trainer.state, trainer.control)  # the summary goes on a line of its own
        advisor.model.eval()
        saved = last_checkpoint(out)
        every = "every step" if settings.save_steps == 1 else f"every {settings.save_steps} steps"
        where = f"the last checkpoint is {saved}" if saved else "no checkpoint is saved yet"
        raise type(exc)(f"training stopped in step {trainer.state.global_step + 1} of {settings.steps}: {exc}; "
                        f"{where} (one {every})") from None
    model = trainer.model
    if settings.lora:
        from peft import PeftModel

        model = cast(PeftModel, model).merge_and_unload()  # GRPOTrainer wrapped it for the peft_config
    model.eval()  # writing and scoring run without dropout
    advisor.model = model
    advisor.info.trained_on = {"receiver": core.provenance()["receiver"], "env_task": core.task.name,
                               "protocol": core.protocol.name, "steps": int(trainer.state.global_step),
                               "dataset_sha256": core.dataset.sha256}
    advisor.save_pretrained(out / "advisor")
    calls, cost = spent()
    tied = nothing_learned(ties)
    if ties and tied > len(ties) / 2:
        logger.warning(
            "in %d of the %d steps every item's %d signals were rewarded alike, so GRPO had nothing to learn from "
            "them (the group baseline cancels the reward): the Receiver answers alike whatever the signal; try more "
            "num_generations, a higher temperature, other items or another Receiver", tied, len(ties),
            config.num_generations)
    record = {"source": source, "settings": dataclasses.asdict(settings), "steps": int(trainer.state.global_step),
              "resumed_from": str(checkpoint) if checkpoint else None, "seconds": time.perf_counter() - began,
              "curve": curve, "tied": ties, "tied_steps": tied, "receiver_calls": calls, "cost_usd": cost,
              "provenance": core.provenance()}
    (out / "training.json").write_text(json.dumps(record, indent=2, default=str))
    return record
