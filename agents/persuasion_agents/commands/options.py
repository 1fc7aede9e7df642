"""The flag groups several Advisor commands share, and what their flags give: the LM Advisor's
training (``AdvisorTraining``'s fields) and the prompt-search policies' options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persuasion_gym.cli.arguments import add_fields, count, field_values

if TYPE_CHECKING:
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining

# The AdvisorTraining fields the command line sets (the seed is each command's --seed).
TRAINING_FLAGS = ("steps", "items_per_step", "num_generations", "beta", "learning_rate", "save_steps", "lora",
                  "dtype")


def add_advisor_arguments(parser: argparse.ArgumentParser) -> None:
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining

    group = parser.add_argument_group("LM Advisor (--algo lm-advisor, policy lm-advisor)")
    group.add_argument("--advisor", default="embedded", help="embedded, a hub id (gpt2), a local or trained directory")
    add_fields(group, AdvisorTraining, TRAINING_FLAGS)
    group.add_argument("--trl", action="append", default=[], metavar="KEY=VALUE",
                       help="any GRPOConfig field, repeatable, over the flags above: "
                            "--trl gradient_accumulation_steps=4 --trl use_vllm=true --trl vllm_mode=colocate "
                            "--trl loss_type=grpo (default: none)")


def advisor_training(args: argparse.Namespace) -> AdvisorTraining:
    """The training the flags of ``add_advisor_arguments`` (and ``--seed``) give."""
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining, parse_grpo_options

    # --trl is read by the installed GRPOConfig's field types; an unknown field is an error naming the closest.
    extra = parse_grpo_options(args.trl) if args.trl else {}
    return AdvisorTraining(**field_values(args, TRAINING_FLAGS), seed=args.seed, extra=extra)


def add_featurizer_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--featurizer", default="auto", choices=["auto", "minilm", "hashed"],
                        help="observations: MiniLM sentence embeddings or hashed n-grams (auto: MiniLM when "
                             "installed)")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    search = parser.add_argument_group("prompt search and a prompted Advisor (policies gepa, prompted-advisor)")
    search.add_argument("--reflection-lm", default=None,
                        help="gepa: the spec of the model that reflects and proposes advice (default: the Receiver)")
    search.add_argument("--budget", type=count, default=200,
                        help="gepa: the most Receiver calls its search makes (its seed, best-fixed, is paid apart)")
    search.add_argument("--advisor-lm", default=None,
                        help="prompted-advisor: the spec of the model that writes a hint per item (default: the "
                             "Receiver)")
    search.add_argument("--advisor-prompt", default=None,
                        help="prompted-advisor: a file holding its prompt, with {item} where the item goes (default: "
                             "persuasion_agents.prompted_advisor.DEFAULT_ADVISOR_PROMPT)")


def search_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The gepa and prompted-advisor options the flags of ``add_search_arguments`` give."""
    prompt = Path(args.advisor_prompt).read_text(encoding="utf-8") if args.advisor_prompt else None
    return {"gepa": {"reflection_lm": args.reflection_lm, "budget": args.budget, "out": str(Path(args.out) / "gepa"),
                     "seed": args.seed},
            "prompted-advisor": {"advisor_lm": args.advisor_lm, **({"prompt": prompt} if prompt else {})}}
