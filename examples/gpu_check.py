"""See the LM Advisor's GPU path work on your machine, in about a minute: a tiny Advisor built
from a config (nothing downloaded), one GRPO step in bfloat16 on CUDA against a loopback
Receiver, then `write` and `log_likelihoods` on CUDA, printing what ran on which device, in
which precision, and how long it took. Without CUDA it says so and runs the same on the CPU in
float32 (so it is tested everywhere).

    python examples/gpu_check.py [--device auto|cuda|cpu] [--dtype auto|bfloat16|float16|float32] [--steps 1]

Exit code 0 when everything ran where it should; 1, with the reason, when something did not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import persuasion_gym  # noqa: F401  (registers the envs)
from persuasion_agents.lm_advisor import LMAdvisor
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining, grpo_config, resolve_dtype
from persuasion_agents.lm_advisor.training import train_lm_advisor
from persuasion_gym.testing import ScriptedChatServer

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["Convert hours to minutes first. Write an equation. Check the units. Think step by step?",
          "How many dollars does she have left? A zoo has 12 zebras and 7 lizards.",
          "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()-+*/=$%"] * 40


def tiny_advisor(path: Path) -> Path:
    """A 2-layer Llama and a 512-token byte-level BPE tokenizer with a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<pad>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True))
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def timed(what: str, rows: list, function, *args, **kwargs):
    began = time.perf_counter()
    result = function(*args, **kwargs)
    rows.append((what, time.perf_counter() - began))
    return result


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cuda, cuda:1 or cpu (default: %(default)s)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"],
                        help="the training precision (default: bfloat16 on a CUDA GPU that has it, else float32)")
    parser.add_argument("--steps", type=int, default=1, help="GRPO steps (default: %(default)s)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = ("cuda" if cuda else "cpu") if args.device == "auto" else args.device
    if args.device == "auto" and not cuda:
        print("found no CUDA device: running on the CPU in float32 instead")
    elif cuda:
        print(f"CUDA: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"bfloat16 {'supported' if torch.cuda.is_bf16_supported() else 'not supported'})")
    dtype = resolve_dtype(args.dtype, torch.device(device).type, cuda and torch.cuda.is_bf16_supported())
    problems: list[str] = []
    rows: list[tuple[str, float]] = []
    from persuasion_gym.tasks import GSM8KTask

    gold = {item.text: item.gold for item in GSM8KTask().load("train", max_items=8).items}

    def reply(messages: list[dict[str, str]]) -> str:  # right for some signals, wrong for others: GRPO has a spread
        content = messages[-1]["content"]
        answer = next((g for question, g in gold.items() if question in content), "0")
        return f"The answer is {answer if len(content) % 2 else -1}."

    server = ScriptedChatServer(reply).start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            advisor = timed("load the Advisor", rows, LMAdvisor.load, str(tiny_advisor(out / "tiny")), device=device)
            placed = next(advisor.model.parameters()).device
            print(f"Advisor: {sum(p.numel() for p in advisor.model.parameters()):,} parameters on {placed}, "
                  f"weights {next(advisor.model.parameters()).dtype}")
            env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                           max_items=8, action_type="text")
            questions = env.unwrapped.dataset.texts[:4]
            items = ["", "Think step by step.", "Convert hours to minutes first."]
            timed("write, greedy (4 signals; the first call warms up)", rows, advisor.write, questions)
            settings = AdvisorTraining(steps=args.steps, items_per_step=2, num_generations=4, save_steps=args.steps,
                                       learning_rate=1e-3, dtype=dtype)
            config = grpo_config(settings, advisor, out / "run", report_to="")
            print(f"GRPO: on {config.device}, precision {dtype} (bf16={config.bf16}, fp16={config.fp16}), "
                  f"use_cpu={config.use_cpu}")
            if cuda and torch.device(device).type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            record = timed(f"GRPO training ({args.steps} step{'s' * (args.steps != 1)})", rows, train_lm_advisor,
                           env, advisor, out / "run", settings, progress=False, report_to="")
            signals = timed("write, sampled (4 signals)", rows, advisor.write, questions, sample=True, seed=1)
            scores = timed("log_likelihoods (4 signals x 3 items)", rows, advisor.log_likelihoods, questions, signals,
                           items)
            after = next(advisor.model.parameters()).device
            print(f"after training: the Advisor is on {after}, "
                  f"{'eval' if not advisor.model.training else 'TRAINING'} mode, weights "
                  f"{next(advisor.model.parameters()).dtype}; {record['steps']} steps, mean reward "
                  f"{[round(r, 3) for _, r in record['curve']]}, {record['receiver_calls']} Receiver calls")
            if cuda and torch.device(device).type == "cuda":
                print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
            print(f"sampled signals: {signals}\nlog-likelihoods, shape {scores.shape}, first row {scores[0].round(2)}")
    finally:
        server.stop()
    if str(config.device).split(":")[0] != torch.device(device).type:
        problems.append(f"GRPO trained on {config.device}, not on {device}")
    if after.type != torch.device(device).type or placed.type != after.type:
        problems.append(f"the Advisor moved from {placed} to {after}")
    if advisor.model.training:
        problems.append("the Advisor was left in training mode")
    if record["steps"] != args.steps or scores.shape != (4, 3):
        problems.append("training or scoring did not finish")
    print("\n| what | seconds |\n| --- | ---: |")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")
    if problems:
        print("\nPROBLEMS: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"\nok: the GPU path ran on {device} in {dtype}" + ("" if cuda else " (no CUDA here: the CPU path)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
