"""Training the LM Advisor by policy gradient on the Receiver's rewards, with TRL's GRPO.

Objective: E_q E_{g ~ pi_phi}[R(q, g)] - beta KL(pi_phi || pi_ref). Each step samples
``num_generations`` signals for each of ``items_per_step`` items; the group's mean reward is
the baseline (GRPO). The rewards are scored Receiver answers (``PersuasionReward``), one
concurrent, cached batch per step. The starting model is saved to ``OUT/start`` first: TRL
rebuilds the reference model from the model's path when ``beta > 0``, and nothing may need
the hub. Checkpoints go to ``OUT/checkpoint-N``; ``resume=True`` continues from the last.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from persuasion_agents.lm_advisor.model import ADVISOR_FILE, LMAdvisor
from persuasion_agents.lm_advisor.reward import PersuasionReward
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ReceiverError
from persuasion_gym.persuasion import TextPosteriorProtocol

if TYPE_CHECKING:
    from transformers import TrainerCallback


@dataclass
class AdvisorTraining:
    """Settings of one training run (recorded in ``OUT/training.json``)."""

    steps: int = 20
    items_per_step: int = 2
    num_generations: int = 4
    beta: float = 0.04
    learning_rate: float = 1e-5
    temperature: float = 1.0
    save_steps: int = 10
    lora: bool = False
    lora_rank: int = 8
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # any further GRPOConfig fields


def last_checkpoint(out: Path) -> Path | None:
    found = [(int(p.name.rsplit("-", 1)[1]), p) for p in out.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()]
    return max(found)[1] if found else None


def _finished(out: Path, checkpoint: Path | None, steps: int) -> dict[str, Any] | None:
    """The record of a run in ``out`` that already reached ``steps``, else None. (Resumed at
    its last step, the Trainer would run one step more.)"""
    if checkpoint is None or not (out / "training.json").is_file() or not (out / "advisor" / ADVISOR_FILE).is_file():
        return None
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    record = json.loads((out / "training.json").read_text())
    return record if state["global_step"] >= steps and record["steps"] >= steps else None


def training_rows(env: PersuasionEnv, advisor: LMAdvisor, seed: int) -> list[dict[str, Any]]:
    """One prompt per training item; under the text posterior, with the item x* it observes
    (exact from a state table, else the env's estimate or a draw from the prior, fixed here)."""
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


def _progress(total: int, env: PersuasionEnv, disable: bool, curve: list[tuple[int, float]],
              spent: Callable[[], tuple[int, float]]) -> TrainerCallback:
    """A tqdm bar over training steps: mean reward, this run's Receiver calls and cost
    (``spent``). Appends each logged (step, mean reward) to ``curve``."""
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


def train_lm_advisor(env: gym.Env, advisor: LMAdvisor | str, out: str | Path, settings: AdvisorTraining | None = None,
                     resume: bool = False, progress: bool = True, report_to: str = "tensorboard") -> dict[str, Any]:
    """Train an LM Advisor (or one loaded from ``embedded``, a hub id or a directory) against
    ``env``'s Receiver (an env made with ``action_type="text"``; under ``protocol="posterior"``
    the env's scheme becomes the Advisor being trained).
    Writes ``OUT/advisor`` (``LMAdvisor.load`` reads it), checkpoints, TensorBoard logs and
    ``OUT/training.json``; returns the training record."""
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

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
    start = out / "start"
    if not (start / ADVISOR_FILE).is_file():
        advisor.save_pretrained(start)
    advisor.model.config._name_or_path = str(start)  # TRL rebuilds the reference model from this path
    if isinstance(core.protocol, TextPosteriorProtocol):
        core.protocol.scheme = advisor  # the committed scheme is the Advisor being trained
    config = GRPOConfig(
        output_dir=str(out), max_steps=settings.steps,
        per_device_train_batch_size=settings.items_per_step * settings.num_generations,
        num_generations=settings.num_generations, max_completion_length=advisor.template.max_new_tokens,
        temperature=settings.temperature, top_k=0, top_p=1.0, beta=settings.beta, learning_rate=settings.learning_rate,
        logging_steps=1, save_steps=settings.save_steps, save_total_limit=2, report_to=[report_to] if report_to else [],
        use_cpu=not torch.cuda.is_available(), bf16=False,
        activation_checkpointing=False,  # small Advisors: speed over memory
        seed=settings.seed, data_seed=settings.seed, disable_tqdm=True, remove_unused_columns=False,
        **settings.extra,
    )
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    reward = PersuasionReward(core, advisor.template, seed=settings.seed)
    curve: list[tuple[int, float]] = []
    # The Receiver may have served others before (a recording, an earlier run): count this run only.
    stats = core.receiver.stats if core.receiver is not None else None
    before = (stats.calls, stats.cost_usd) if stats else (0, 0.0)

    def spent() -> tuple[int, float]:
        return (stats.calls - before[0], stats.cost_usd - before[1]) if stats else (0, 0.0)

    bar = _progress(settings.steps, core, not progress, curve, spent)
    # TRL types a reward function's result as an invariant list[float | None]; ours is list[float].
    trainer = GRPOTrainer(model=advisor.model, reward_funcs=reward, args=config,  # type: ignore[arg-type]
                          train_dataset=Dataset.from_list(training_rows(core, advisor, settings.seed)),
                          processing_class=advisor.tokenizer, peft_config=peft_config, callbacks=[bar])
    trainer.remove_callback(PrinterCallback)  # our bar shows the logs; TensorBoard keeps them all
    began = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except ReceiverError as exc:
        # A step's Receiver batch failed after its retries: GRPO cannot score that step. What
        # came back is cached and the checkpoints hold the steps before; say so, where it stopped.
        bar.on_train_end(config, trainer.state, trainer.control)  # the summary goes on a line of its own
        saved = last_checkpoint(out)
        every = "every step" if settings.save_steps == 1 else f"every {settings.save_steps} steps"
        where = f"the last checkpoint is {saved}" if saved else "no checkpoint is saved yet"
        raise type(exc)(f"training stopped in step {trainer.state.global_step + 1} of {settings.steps}: {exc}; "
                        f"{where} (one {every})") from None
    model = trainer.model
    if settings.lora:
        from peft import PeftModel

        model = cast(PeftModel, model).merge_and_unload()  # GRPOTrainer wrapped it for the peft_config
    advisor.model = model
    advisor.info.trained_on = {"receiver": core.provenance()["receiver"], "env_task": core.task.name,
                               "protocol": core.protocol.name, "steps": int(trainer.state.global_step),
                               "dataset_sha256": core.dataset.sha256}
    advisor.save_pretrained(out / "advisor")
    calls, cost = spent()
    record = {"source": source, "settings": settings.__dict__, "steps": int(trainer.state.global_step),
              "resumed_from": str(checkpoint) if checkpoint else None, "seconds": time.perf_counter() - began,
              "curve": curve, "receiver_calls": calls, "cost_usd": cost, "provenance": core.provenance()}
    (out / "training.json").write_text(json.dumps(record, indent=2, default=str))
    return record
