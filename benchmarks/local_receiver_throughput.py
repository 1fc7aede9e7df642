"""Local Receiver throughput: generated tokens per second at batch 1, 8 and 16, in one run.

The embedded SmolLM2-135M (GGUF, dequantised to float32) answers the same GSM8K questions at
each batch size, greedy, with the cache off. Prints a markdown table with ratios to batch 1.

    python benchmarks/local_receiver_throughput.py [--prompts 16] [--max-new-tokens 48] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from persuasion_gym.receivers import make_receiver
from persuasion_gym.tasks import GSM8KTask


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-sizes", default="1,8,16")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    task = GSM8KTask()
    items = task.load("test", max_items=args.prompts).items
    prompts = [task.build_messages(item, "Think step by step.") for item in items]
    rows = []
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        receiver = make_receiver(
            f"embedded?max_new_tokens={args.max_new_tokens}&batch_size={batch_size}"
            + (f"&threads={args.threads}" if args.threads else ""), cache=False)
        receiver.load()
        receiver.respond(prompts[:1])  # warm-up: first-call allocations are not throughput
        began = time.perf_counter()
        responses = receiver.respond(prompts)
        seconds = time.perf_counter() - began
        tokens = sum(r.usage.completion_tokens for r in responses)
        rows.append((batch_size, tokens, seconds, tokens / seconds))

    base = rows[0][3]
    print(f"SmolLM2-135M-Instruct (GGUF Q4_1 -> float32), {args.prompts} GSM8K prompts, "
          f"max_new_tokens={args.max_new_tokens}, greedy; {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}\n")
    print("| batch size | generated tokens | seconds | tokens/s | ratio to batch 1 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for batch_size, tokens, seconds, rate in rows:
        print(f"| {batch_size} | {tokens} | {seconds:.1f} | {rate:.1f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
