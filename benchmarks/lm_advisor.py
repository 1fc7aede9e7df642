"""LM Advisor (embedded SmolLM2-135M-Instruct): one GRPO training step split into its parts,
and signals per second at batch 1 against batch 16, in one run.

1. Signals: ``LMAdvisor.write`` samples one signal for each of the same GSM8K questions at batch
   size 1 and at batch size 16 (``max_new_tokens`` as the template's default), side by side;
   then the teacher-forced ``log_likelihoods`` of the first ``--ll-signals`` of those signals
   under the env's 10 signal texts as information items (signal-item pairs scored per second).
2. Training: ``train_lm_advisor`` (TRL's GRPO) for a few steps against a loopback Receiver, the
   scripted OpenAI-compatible server on 127.0.0.1 (``persuasion_gym.testing.ScriptedChatServer``)
   with a fixed latency per request, as a remote endpoint would have. Each step is split into
   generation (the model's ``generate`` calls), Receiver answers (the reward function:
   ``PersuasionReward`` through the env's batched ``play``) and update (the rest of the step:
   policy and reference log-probabilities, loss, backward, optimizer). Per-step seconds are the
   median over the steps after the first.

The scripted Receiver answers the gold number for about half the (question, signal) prompts and
a wrong one for the rest (a hash of the prompt decides), so the rewards vary within a group.

    python benchmarks/lm_advisor.py [--questions 32] [--ll-signals 8] [--steps 5] [--latency 0.5]

Both parts use both cores: run it on an otherwise idle machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import zlib

import gymnasium as gym
import torch

import persuasion_gym  # noqa: F401
from persuasion_agents.lm_advisor import training
from persuasion_agents.lm_advisor.model import LMAdvisor
from persuasion_agents.lm_advisor.reward import PersuasionReward
from persuasion_gym.testing import ScriptedChatServer


def scripted_reply(golds: dict[str, str]):
    """The gold answer for about half the prompts, a wrong one for the rest (by a prompt hash)."""

    def reply(messages: list[dict[str, str]]) -> str:
        text = "\n".join(m["content"] for m in messages)
        gold = next((g for q, g in golds.items() if q in text), "0")
        right = zlib.crc32(text.encode()) % 2 == 0
        return f"The answer is {gold if right else gold + '1'}."

    return reply


class Clock:
    """Seconds spent in wrapped calls, summed."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
                self.calls += 1

        return timed


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def signals_per_second(advisor: LMAdvisor, questions: list[str], items: list[str], ll_signals: int) -> list[tuple]:
    advisor.write(questions[:2], sample=True, batch_size=2)  # warm-up: first-call allocations
    rows = []
    signals = None
    for batch_size in (1, 16):
        began = time.perf_counter()
        out = advisor.write(questions, sample=True, seed=0, batch_size=batch_size)
        seconds = time.perf_counter() - began
        signals = signals if signals is not None else out
        rows.append((f"write, sampled, batch {batch_size}", len(out), "signals", seconds))
        log(f"write at batch {batch_size}: {seconds:.1f} s")
    began = time.perf_counter()
    scores = advisor.log_likelihoods(questions[:ll_signals], signals[:ll_signals], items)
    seconds = time.perf_counter() - began
    log(f"log_likelihoods: {seconds:.1f} s")
    rows.append((f"log_likelihoods, batch 32 ({ll_signals} signals x {len(items)} items)", scores.size,
                 "signal-item pairs", seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--ll-signals", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--items-per-step", type=int, default=2)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    os.environ.setdefault("PERSUASION_GYM_CACHE_DIR", tempfile.mkdtemp(prefix="lm-advisor-bench-cache-"))

    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    advisor = LMAdvisor.load("embedded")
    load_seconds = time.perf_counter() - began

    with ScriptedChatServer(latency_s=args.latency) as server:
        env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", action_type="text",
                       featurizer="hashed", max_items=args.questions)
        core = env.unwrapped
        items = core.dataset.items
        server.reply = scripted_reply({it.text: it.gold for it in items})
        questions = [it.text for it in items]

        # -- 1. signals per second ---------------------------------------------------------
        throughput = signals_per_second(advisor, questions, list(core.signals), args.ll_signals)

        # -- 2. training steps, timed by part ------------------------------------------------
        generation, reward_clock, steps = Clock(), Clock(), []
        holder: dict = {}

        class TimedReward(PersuasionReward):
            def __call__(self, *a, **k):
                return reward_clock.wrap(super().__call__)(*a, **k)

        def step_timer():
            from transformers import TrainerCallback

            class StepTimer(TrainerCallback):
                def on_step_begin(self, args, state, control, **kwargs):
                    self.mark = (time.perf_counter(), generation.seconds, reward_clock.seconds)

                def on_step_end(self, args, state, control, **kwargs):
                    t, g, r = self.mark
                    steps.append((time.perf_counter() - t, generation.seconds - g, reward_clock.seconds - r))
                    log(f"training step {len(steps)}: {steps[-1][0]:.1f} s")

            return StepTimer()

        import trl

        original_trainer = trl.GRPOTrainer

        class TimedTrainer(original_trainer):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.add_callback(step_timer())
                holder["trainer"] = self

        advisor.model.generate = generation.wrap(advisor.model.generate)
        trl.GRPOTrainer, training.PersuasionReward = TimedTrainer, TimedReward
        try:
            with tempfile.TemporaryDirectory() as out:
                settings = training.AdvisorTraining(steps=args.steps, items_per_step=args.items_per_step,
                                                    num_generations=args.num_generations, beta=0.04,
                                                    save_steps=10_000)
                began = time.perf_counter()
                record = training.train_lm_advisor(env, advisor, out, settings, progress=False, report_to="")
                train_seconds = time.perf_counter() - began
        finally:
            trl.GRPOTrainer, training.PersuasionReward = original_trainer, PersuasionReward
        requests = server.count
        env.close()

    trl_step_times = [h["step_time"] for h in holder["trainer"].state.log_history if "step_time" in h]
    print(f"LM Advisor: embedded SmolLM2-135M-Instruct (GGUF -> float32), {platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"model load {load_seconds:.1f} s; 1-min load average {load_before:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print(f"Signals per second, {len(questions)} GSM8K questions, sampled, "
          f"max_new_tokens={advisor.template.max_new_tokens}\n")
    print("| what | count | seconds | per second | ratio to batch 1 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = throughput[0][1] / throughput[0][3]
    for name, count, unit, seconds in throughput:
        rate = count / seconds
        ratio = f"{rate / base:.2f}" if name.startswith("write") else "-"
        print(f"| {name} | {count} {unit} | {seconds:.1f} | {rate:.2f} | {ratio} |")

    per_step = args.items_per_step * args.num_generations
    print(f"\nGRPO training, {args.steps} steps of {args.items_per_step} items x {args.num_generations} generations "
          f"({per_step} signals a step), beta 0.04; loopback Receiver latency {args.latency:g} s a request; "
          f"{requests} Receiver requests; train_lm_advisor {train_seconds:.1f} s in all "
          f"(with saving the start model and the result)\n")
    print("| step | step s | generation s | Receiver answers s | update s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, (total, gen, rew) in enumerate(steps, 1):
        print(f"| {n} | {total:.2f} | {gen:.2f} | {rew:.2f} | {total - gen - rew:.2f} |")
    later = steps[1:] or steps
    med = [statistics.median(s[k] for s in later) for k in range(3)]
    total, gen, rew = med
    update = total - gen - rew
    print(f"\nMedian over steps 2..{len(steps)} (TRL step_time, training_step only: "
          f"{', '.join(f'{t:.2f}' for t in trl_step_times)}):\n")
    print("| part | seconds a step | share of the step |")
    print("| --- | ---: | ---: |")
    for name, value in (("generation (sampling the signals)", gen), ("Receiver answers (reward function)", rew),
                        ("update (log-probs, loss, backward, optimizer)", update), ("whole step", total)):
        print(f"| {name} | {value:.2f} | {value / total:.2f} |")
    print(f"\nreward batches {reward_clock.calls}, generate calls {generation.calls}, "
          f"curve {record['curve']}, receiver_calls {record['receiver_calls']}")


if __name__ == "__main__":
    main()
