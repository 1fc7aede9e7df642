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
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining, grpo_settings, record_sampling, trl_module
from persuasion_agents.lm_advisor.model import ADVISOR_FILE, LMAdvisor, first_line_length
from persuasion_agents.lm_advisor.reward import PersuasionReward
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError, ReceiverError
from persuasion_gym.persuasion import TextPosteriorProtocol

if TYPE_CHECKING:
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

REFERENCE_FILE = "reference.json"  # in OUT/start: the source and weights hash of the model training started from

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

    trl = trl_module()
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
