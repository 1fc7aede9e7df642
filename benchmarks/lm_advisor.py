"""LM Advisor (embedded SmolLM2-135M-Instruct): one GRPO training step split into its parts,
signals per second at batch 1 against batch 16, and the Receiver's likelihoods before and after
they shared the prompt prefix, in one run.

1. Signals: ``LMAdvisor.write`` samples one signal for each of the same GSM8K questions at batch
   size 1 and at batch size 16 (``max_new_tokens`` as the template's default), side by side.
2. Likelihoods: the teacher-forced ``log_likelihoods`` of signals under the env's 10 signal texts
   as information items, side by side with the method it replaced (``before_log_likelihoods``,
   kept here only: a full forward pass per pair and a log-softmax over the whole vocabulary at
   every position), alternating, the median of ``--ll-rounds`` each, on the same prompt ids. Two
   shapes of 80 pairs: ``--ll-signals`` signals of as many questions, and a posterior GRPO step's
   (``--items-per-step`` questions x ``--num-generations`` signals each). Then peak memory: each
   method in a process of its own (``--memory-probe``) scoring the first shape with a model built
   from a Qwen2 config with Qwen's 152k vocabulary (2 layers, hidden 64, the embedded tokenizer):
   the growth of the peak resident set while scoring (``/proc/self/clear_refs``, ``VmHWM``).
3. Training: ``train_lm_advisor`` (TRL's GRPO) for a few steps against a loopback Receiver, the
   scripted OpenAI-compatible server on 127.0.0.1 (``persuasion_gym.testing.ScriptedChatServer``)
   with a fixed latency per request, as a remote endpoint would have. Each step is split into
   generation (the model's ``generate`` calls), Receiver answers (the reward function:
   ``PersuasionReward`` through the env's batched ``play``) and update (the rest of the step:
   policy and reference log-probabilities, loss, backward, optimizer). Per-step seconds are the
   median over the steps after the first.

The scripted Receiver answers the gold number for about half the (question, signal) prompts and
a wrong one for the rest (a hash of the prompt decides), so the rewards vary within a group.

    python benchmarks/lm_advisor.py [--questions 32] [--ll-signals 8] [--ll-rounds 3] [--steps 5] [--latency 0.5]
    python benchmarks/lm_advisor.py --likelihoods-only [--threads 1]     # part 2 alone

All parts use both cores: run it on an otherwise idle machine (the load average is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import persuasion_gym  # noqa: F401
from persuasion_agents.lm_advisor import training
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
from persuasion_agents.lm_advisor.model import AdvisorInfo, LMAdvisor, resolve_source
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


def before_log_likelihoods(advisor: LMAdvisor, questions, signals, items, batch_size: int = 32) -> np.ndarray:
    """``LMAdvisor.log_likelihoods`` before it shared the prompt prefix (the "before" side, kept
    here only): one full forward pass per (signal, item) pair, left-padded in batches, and a
    float32 log-softmax over the whole vocabulary at every position. It reads the prompt ids
    the Advisor reads now (``encode_prompts``), so both sides score the same tokens."""
    pairs = [(advisor.prompt(q, x), s) for q, s in zip(questions, signals, strict=True) for x in items]
    totals = np.empty(len(pairs))
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            prompt_ids = advisor.encode_prompts([p for p, _ in chunk])
            signal_ids = [advisor.tokenizer(s, add_special_tokens=False)["input_ids"] if s else [] for _, s in chunk]
            width = max(len(p) + len(s) for p, s in zip(prompt_ids, signal_ids, strict=True))
            ids = torch.full((len(chunk), width), advisor.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            target = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, (p, s) in enumerate(zip(prompt_ids, signal_ids, strict=True)):
                sequence = p + s
                ids[row, width - len(sequence):] = torch.tensor(sequence)  # left padding
                mask[row, width - len(sequence):] = 1
                target[row, width - len(s):] = len(s) > 0
            ids, mask, target = ids.to(advisor.device), mask.to(advisor.device), target.to(advisor.device)
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            logits = advisor.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1].float()
            token_logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            totals[start:start + len(chunk)] = (token_logp * target[:, 1:]).sum(dim=1).cpu().numpy()
    return totals.reshape(len(signals), len(items))


def signals_per_second(advisor: LMAdvisor, questions: list[str]) -> tuple[list[tuple], list[str]]:
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
    return rows, signals


def likelihoods_side_by_side(advisor: LMAdvisor, shapes: dict[str, tuple[list[str], list[str]]], items: list[str],
                             rounds: int) -> list[tuple]:
    """(shape, pairs, before s, after s, max |after - before|): each side's median over
    ``rounds``, the two alternating (which goes first swaps every round)."""
    first_questions, first_signals = next(iter(shapes.values()))
    advisor.log_likelihoods(first_questions[:1], first_signals[:1], items[:2])  # warm-up
    before_log_likelihoods(advisor, first_questions[:1], first_signals[:1], items[:2])
    rows = []
    for name, (questions, signals) in shapes.items():
        seconds: dict[str, list[float]] = {"before": [], "after": []}
        scores = {}
        for r in range(rounds):
            for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
                score = before_log_likelihoods if side == "before" else LMAdvisor.log_likelihoods
                began = time.perf_counter()
                scores[side] = score(advisor, questions, signals, items)
                seconds[side].append(time.perf_counter() - began)
                log(f"log_likelihoods {side}, {name}: {seconds[side][-1]:.1f} s")
        rows.append((name, scores["after"].size, statistics.median(seconds["before"]),
                     statistics.median(seconds["after"]), float(np.abs(scores["after"] - scores["before"]).max())))
    return rows


def memory_probe(method: str, data_file: str, batch_size: int) -> None:
    """One method scores the questions and signals of ``data_file`` with a model built from a
    Qwen2 config with Qwen's 152k vocabulary; prints what scoring added to the peak resident set."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    def status(field: str) -> float:  # MB
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
        return int(line.split()[1]) / 1024

    data = json.loads(Path(data_file).read_text())
    where, extra = resolve_source("embedded")
    tokenizer = AutoTokenizer.from_pretrained(where, **extra)
    config = Qwen2Config(vocab_size=152_000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    advisor = LMAdvisor(Qwen2ForCausalLM(config).eval(), tokenizer, AdvisorInfo("qwen2-config-152k"), device="cpu")
    args = (advisor, data["questions"], data["signals"], data["items"])
    score = before_log_likelihoods if method == "before" else LMAdvisor.log_likelihoods
    score(args[0], args[1][:1], args[2][:1], args[3][:2], batch_size=batch_size)  # first-call allocations
    rss = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    began = time.perf_counter()
    scores = score(*args, batch_size=batch_size)
    seconds = time.perf_counter() - began
    print(json.dumps({"method": method, "rss_mb": rss, "peak_mb": status("VmHWM"), "seconds": seconds,
                      "scores": scores.tolist()}))


def memory_side_by_side(data: dict, batch_size: int, threads: int | None) -> dict[str, dict]:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        data_file = Path(folder) / "pairs.json"
        data_file.write_text(json.dumps(data))
        for method in ("before", "after"):
            out = subprocess.run([sys.executable, __file__, "--memory-probe", method, "--memory-data", str(data_file),
                                  "--memory-batch", str(batch_size), *(["--threads", str(threads)] if threads else [])],
                                 capture_output=True, text=True, check=True)
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"memory {method}: peak {results[method]['peak_mb']:.0f} MB from {results[method]['rss_mb']:.0f} MB")
    return results


def train_timed(env, advisor: LMAdvisor, server: ScriptedChatServer, args) -> dict:
    """``train_lm_advisor`` with timers on generation and on the reward function."""
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
            settings = AdvisorTraining(steps=args.steps, items_per_step=args.items_per_step,
                                                num_generations=args.num_generations, beta=0.04,
                                                save_steps=10_000)
            began = time.perf_counter()
            record = training.train_lm_advisor(env, advisor, out, settings, progress=False, report_to="")
            train_seconds = time.perf_counter() - began
    finally:
        trl.GRPOTrainer, training.PersuasionReward = original_trainer, PersuasionReward
    requests = server.count
    trl_step_times = [h["step_time"] for h in holder["trainer"].state.log_history if "step_time" in h]
    return {"record": record, "steps": steps, "requests": requests, "seconds": train_seconds,
            "trl_step_times": trl_step_times, "reward_calls": reward_clock.calls,
            "generate_calls": generation.calls}


def print_throughput(throughput: list[tuple], questions: list[str], advisor: LMAdvisor) -> None:
    print(f"Signals per second, {len(questions)} GSM8K questions, sampled, "
          f"max_new_tokens={advisor.template.max_new_tokens}\n")
    print("| what | count | seconds | per second | ratio to batch 1 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = throughput[0][1] / throughput[0][3]
    for name, count, unit, seconds in throughput:
        rate = count / seconds
        print(f"| {name} | {count} {unit} | {seconds:.1f} | {rate:.2f} | {rate / base:.2f} |")
    print()


def print_likelihoods(rows: list[tuple], memory: dict[str, dict], m: int, args) -> None:
    print(f"log_likelihoods under the env's {m} signal texts, batch 32, median of {args.ll_rounds} "
          "alternating runs each; before: a full pass per pair, the whole vocabulary at every position\n")
    print("| signals | pairs | before s | after s | before pairs/s | after pairs/s | after / before | max abs diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, pairs, before, after, diff in rows:
        print(f"| {name} | {pairs} | {before:.2f} | {after:.2f} | {pairs / before:.2f} | {pairs / after:.2f} "
              f"| {before / after:.2f} | {diff:.1e} |")
    b, a = memory["before"], memory["after"]
    diff = float(np.abs(np.array(a["scores"]) - np.array(b["scores"])).max())
    print(f"\nPeak memory, the first shape, batch {args.memory_batch}, a model from a Qwen2 config with a "
          f"152,000-token vocabulary (2 layers, hidden 64), each method in its own process; "
          f"max abs diff {diff:.1e}\n")
    print("| method | resident before scoring MB | peak while scoring MB | added MB | seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in (("before", b), ("after", a)):
        added = r["peak_mb"] - r["rss_mb"]
        print(f"| {name} | {r['rss_mb']:.0f} | {r['peak_mb']:.0f} | {added:.0f} | {r['seconds']:.2f} |")
    added = [r["peak_mb"] - r["rss_mb"] for r in (b, a)]
    print(f"\nadded memory, before / after: {added[0] / max(added[1], 1):.1f}; peak, before / after: "
          f"{b['peak_mb'] / a['peak_mb']:.1f}")


def print_training(trained: dict, args) -> None:
    steps, trl_step_times, record = trained["steps"], trained["trl_step_times"], trained["record"]
    per_step = args.items_per_step * args.num_generations
    print(f"\nGRPO training, {args.steps} steps of {args.items_per_step} items x {args.num_generations} generations "
          f"({per_step} signals a step), beta 0.04; loopback Receiver latency {args.latency:g} s a request; "
          f"{trained['requests']} Receiver requests; train_lm_advisor {trained['seconds']:.1f} s in all "
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
    print(f"\nreward batches {trained['reward_calls']}, generate calls {trained['generate_calls']}, "
          f"curve {record['curve']}, receiver_calls {record['receiver_calls']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--ll-signals", type=int, default=8)
    parser.add_argument("--ll-rounds", type=int, default=3)
    parser.add_argument("--memory-batch", type=int, default=32, help="both methods' batch size (pairs) for memory")
    parser.add_argument("--likelihoods-only", action="store_true", help="part 2 alone")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own); 1 on a busy machine")
    parser.add_argument("--memory-probe", choices=("before", "after"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-data", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--items-per-step", type=int, default=2)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe, args.memory_data, args.memory_batch)
        return
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
        signal_texts = list(core.signals)

        # -- 1. signals per second ---------------------------------------------------------
        if args.likelihoods_only:
            throughput, signals = [], advisor.write(questions[:args.ll_signals], sample=True, seed=0)
        else:
            throughput, signals = signals_per_second(advisor, questions)

        # -- 2. likelihoods, before and after ------------------------------------------------
        n = args.ll_signals
        step_questions = [q for q in questions[:args.items_per_step] for _ in range(args.num_generations)]
        shapes = {f"{n} signals of {n} questions": (questions[:n], signals[:n]),
                  f"{len(step_questions)} signals of {args.items_per_step} questions (a GRPO step's)":
                      (step_questions, advisor.write(step_questions, sample=True, seed=1))}
        likelihoods = likelihoods_side_by_side(advisor, shapes, signal_texts, args.ll_rounds)
        memory = memory_side_by_side({"questions": questions[:n], "signals": signals[:n], "items": signal_texts},
                                     args.memory_batch, args.threads)

        if not args.likelihoods_only:
            trained = train_timed(env, advisor, server, args)
        env.close()

    print(f"LM Advisor: embedded SmolLM2-135M-Instruct (GGUF -> float32), {platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"model load {load_seconds:.1f} s; 1-min load average {load_before:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    if throughput:
        print_throughput(throughput, questions, advisor)
    print_likelihoods(likelihoods, memory, len(signal_texts), args)
    if not args.likelihoods_only:
        print_training(trained, args)


if __name__ == "__main__":
    main()
