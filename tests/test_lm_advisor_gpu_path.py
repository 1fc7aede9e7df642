"""The LM Advisor's training as a GPU run needs it, and what is trained is what is evaluated:
GRPOConfig settings (a user's win, --trl, dtype, use_cpu), eval mode, one tokenization with a
BOS-adding tokenizer, generation that stops at the first line, one sampling distribution, the
KL reference, ties, and the lowest TRL / transformers versions admitted."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from persuasion_agents.lm_advisor import LMAdvisor
from persuasion_agents.lm_advisor.model import first_line_ended, first_line_length
from persuasion_agents.lm_advisor.grpo_config import (
    AdvisorTraining,
    grpo_config,
    grpo_settings,
    parse_grpo_options,
    resolve_dtype,
)
from persuasion_agents.lm_advisor.training import REFERENCE_FILE, first_line_trainer, last_checkpoint, train_lm_advisor
from persuasion_gym.cli.main import main
from persuasion_gym.errors import ConfigError
from persuasion_gym.tasks import GSM8KTask

from testkit import CHATML, advice_of, build_tiny_advisor, favour_newlines, question_of, recorded_generate

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
REPO = Path(__file__).resolve().parents[1]
QUICK = dict(steps=1, items_per_step=2, num_generations=4, save_steps=1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_advisor(tmp_path_factory.mktemp("tiny") / "advisor")


@pytest.fixture
def question_server(make_server, gold_by_question):
    return make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if '?' in advice_of(m) else -1}.")


def text_env(server, max_items=8):
    return gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                    max_items=max_items, action_type="text")


def questions(n=4):
    return GSM8KTask().load("test", max_items=n).texts


# -- the GRPOConfig: a user's settings win, --trl, dtype, use_cpu ------------------------------------------------------

def test_extra_overrides_every_default_and_an_unknown_field_names_the_closest(tiny_dir, tmp_path):
    advisor = LMAdvisor.load(str(tiny_dir), device="cpu")
    settings = AdvisorTraining(temperature=1.0, seed=0, extra={"temperature": 0.7, "seed": 3, "report_to": ["none"],
                                                                "gradient_accumulation_steps": 2, "bf16": False})
    config = grpo_config(settings, advisor, tmp_path, report_to="tensorboard")
    assert (config.temperature, config.seed, config.gradient_accumulation_steps) == (0.7, 3, 2)
    assert config.report_to in (["none"], "none", [])
    assert config.top_k == 0 and config.disable_dropout is True and config.max_completion_length == 24
    with pytest.raises(ConfigError, match=r"'temprature' is not a GRPOConfig field .*did you mean 'temperature'"):
        grpo_config(AdvisorTraining(extra={"temprature": 0.7}), advisor, tmp_path)
    # The checkpointing field is whichever the installed transformers has, and the user's choice stands.
    kwargs = grpo_settings(AdvisorTraining(extra={"gradient_checkpointing": True}), advisor, tmp_path)
    assert kwargs["gradient_checkpointing"] is True and "activation_checkpointing" not in kwargs


def test_trl_options_are_read_as_their_fields_types():
    options = parse_grpo_options(["gradient_accumulation_steps=4", "use_vllm=true", "vllm_mode=colocate",
                                  "scale_rewards=none", "max_grad_norm=0.5", "min_p=none", "loss-type=grpo",
                                  'generation_kwargs={"top_k": 5}'])
    assert options == {"gradient_accumulation_steps": 4, "use_vllm": True, "vllm_mode": "colocate",
                       "scale_rewards": "none", "max_grad_norm": 0.5, "min_p": None, "loss_type": "grpo",
                       "generation_kwargs": {"top_k": 5}}
    assert isinstance(options["max_grad_norm"], float) and type(parse_grpo_options(["beta=1"])["beta"]) is float
    with pytest.raises(ConfigError, match=r"'gradient_accumulation_step' is not a GRPOConfig field.*"
                                          r"'gradient_accumulation_steps'"):
        parse_grpo_options(["gradient_accumulation_step=4"])
    with pytest.raises(ConfigError, match="gradient_accumulation_steps takes int"):
        parse_grpo_options(["gradient_accumulation_steps=four"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_grpo_options(["use_vllm"])


def test_the_command_line_passes_trl_fields_and_names_an_unknown_one(tmp_path, capsys, monkeypatch):
    from persuasion_agents.commands import train as train_command
    from persuasion_agents.commands.options import advisor_training

    common = ["train", "--algo", "lm-advisor", "--receiver", "openai:m@http://127.0.0.1:9/v1", "--out", str(tmp_path)]
    assert main([*common, "--trl", "lerning_rate=1e-4"]) == 2
    err = capsys.readouterr().err
    assert "'lerning_rate' is not a GRPOConfig field" in err and "'learning_rate'" in err
    seen = {}

    def stop(args):  # what the training would get
        seen["training"] = advisor_training(args)
        return 0

    monkeypatch.setattr(train_command, "_train_lm_advisor", stop)
    assert main([*common, "--trl", "gradient_accumulation_steps=2", "--trl", "use_vllm=false", "--dtype",
                 "float32"]) == 0
    assert seen["training"].extra == {"gradient_accumulation_steps": 2, "use_vllm": False}
    assert seen["training"].dtype == "float32"


def test_the_dtype_defaults_to_bfloat16_on_cuda_and_float32_on_the_cpu():
    assert resolve_dtype("auto", "cpu", bf16_supported=False) == "float32"
    assert resolve_dtype("auto", "cpu", bf16_supported=True) == "float32"
    assert resolve_dtype("auto", "cuda", bf16_supported=True) == "bfloat16"
    assert resolve_dtype("auto", "cuda", bf16_supported=False) == "float32"  # pre-Ampere: no bf16
    assert resolve_dtype("float32", "cuda", bf16_supported=True) == "float32"
    assert resolve_dtype("bfloat16", "cpu", bf16_supported=False) == "bfloat16"  # CPU autocast has it
    with pytest.raises(ConfigError, match="float16 training needs a CUDA device"):
        resolve_dtype("float16", "cpu", bf16_supported=False)
    with pytest.raises(ConfigError, match="no bfloat16"):
        resolve_dtype("bfloat16", "cuda", bf16_supported=False)
    with pytest.raises(ConfigError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", "cuda", bf16_supported=True)


def test_an_advisor_on_the_cpu_trains_on_the_cpu_on_a_cuda_machine(tiny_dir, tmp_path, monkeypatch):
    import torch

    advisor = LMAdvisor.load(str(tiny_dir), device="cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a CUDA machine, as the settings see it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    kwargs = grpo_settings(AdvisorTraining(), advisor, tmp_path)
    assert kwargs["use_cpu"] is True and kwargs["bf16"] is False and kwargs["fp16"] is False
    advisor.device = "cuda"  # the same machine, an Advisor on its GPU: bf16 by default, the Trainer's device
    kwargs = grpo_settings(AdvisorTraining(), advisor, tmp_path)
    assert kwargs["use_cpu"] is False and kwargs["bf16"] is True
    assert grpo_settings(AdvisorTraining(dtype="float32"), advisor, tmp_path)["bf16"] is False


# -- what is trained is what is evaluated --------------------------------------------------------------------------

def test_after_training_the_advisor_is_in_eval_mode_and_greedy_signals_are_deterministic(question_server, tmp_path):
    import torch

    advisor = LMAdvisor.load(str(build_tiny_advisor(tmp_path / "drop", attention_dropout=0.5)), device="cpu")
    ids = torch.tensor([advisor.encode_prompts([advisor.prompt(questions(1)[0])])[0]])
    advisor.model.train()
    with torch.no_grad():  # dropout does change this model's outputs
        assert not torch.allclose(advisor.model(ids).logits, advisor.model(ids).logits)
    assert advisor.write(questions()) == advisor.write(questions())  # write runs in eval mode...
    assert advisor.model.training  # ...and gives the model back in the mode it had
    train_lm_advisor(text_env(question_server), advisor, tmp_path / "run", AdvisorTraining(**QUICK), progress=False,
                     report_to="")
    assert not any(module.training for module in advisor.model.modules())
    assert advisor.write(questions()) == advisor.write(questions())


@pytest.mark.parametrize("template", ["chatml", "bos-chatml", "base"])
def test_training_write_and_scoring_read_the_same_prompt_ids_with_a_bos_tokenizer(template, question_server, tmp_path):
    chat = {"chatml": CHATML, "bos-chatml": "{{ bos_token }}" + CHATML, "base": None}[template]
    advisor = LMAdvisor.load(str(build_tiny_advisor(tmp_path / "bos", bos=True, chat_template=chat)), device="cpu")
    bos = advisor.tokenizer.bos_token_id
    assert advisor.adds_bos
    env = text_env(question_server, max_items=4)
    prompts = [advisor.prompt(q) for q in env.unwrapped.dataset.texts]
    encoded = advisor.encode_prompts(prompts)
    assert all(ids[0] == bos and ids[1] != bos for ids in encoded)  # one BOS, never two
    if chat:
        # The chat template's own tokens, with a BOS in front only where the template has none.
        expected = advisor.tokenizer.apply_chat_template(advisor.template.messages(env.unwrapped.dataset.texts[0]),
                                                         add_generation_prompt=True, tokenize=True, return_dict=True)
        expected = list(expected["input_ids"])
        assert encoded[0] == (expected if template == "bos-chatml" else [bos, *expected])
    calls: list = []
    recorded_generate(advisor.model, calls)
    train_lm_advisor(env, advisor, tmp_path / "run", AdvisorTraining(**QUICK), progress=False, report_to="")
    trained_on = [ids for call in calls for ids in call["prompts"]]
    assert trained_on and all(ids in encoded for ids in trained_on)  # what TRL fed the model
    calls.clear()
    advisor.write(env.unwrapped.dataset.texts)
    assert calls[0]["prompts"] == encoded  # what write feeds it


def test_generation_stops_at_the_end_of_the_first_line_in_training_and_in_write(question_server, tmp_path):
    advisor = LMAdvisor.load(str(build_tiny_advisor(tmp_path / "nl")), device="cpu")
    favour_newlines(advisor)  # most completions would hold more than one line
    seen: list = []

    class Recorder:
        __name__ = "recorder"

        def __call__(self, prompts, completions, completion_ids, **kwargs):
            seen.extend(zip(completions, completion_ids, strict=True))
            return [0.0] * len(completions)

    calls: list = []
    recorded_generate(advisor.model, calls)
    assert advisor.write(questions(8), sample=True, seed=1)
    written = [[t for t in row if t != advisor.tokenizer.pad_token_id] for row in calls[0]["completions"]]
    assert all(first_line_length(advisor.tokenizer, row) == len(row) for row in written)
    assert sum(first_line_ended(advisor.tokenizer.decode(row)) for row in written) >= 6  # lines did end
    settings = AdvisorTraining(**QUICK)
    from datasets import Dataset
    from trl import GRPOTrainer

    trainer_class = first_line_trainer(GRPOTrainer)

    trainer = trainer_class(model=advisor.model, reward_funcs=[Recorder()], processing_class=advisor.tokenizer,
                            args=grpo_config(settings, advisor, tmp_path / "run", report_to=""),
                            train_dataset=Dataset.from_list([{"prompt": advisor.prompt(q)} for q in questions(8)]))
    trainer.train()
    ended = [(text, ids) for text, ids in seen if first_line_ended(text)]
    assert len(seen) == 8 and len(ended) >= 6
    for text, ids in seen:  # nothing past the first line's break: the tokens credited are the signal's
        assert first_line_length(advisor.tokenizer, ids) == len(ids)
        lines = text.splitlines(keepends=True)
        content = next((k for k, line in enumerate(lines) if line.strip()), None)
        assert content is None or not "".join(lines[content + 1:]).strip()
    # The cut is the first line's end, found in tokens, leading blank lines kept.
    ids = advisor.tokenizer("\n\nAbc def\nmore", add_special_tokens=False)["input_ids"]
    assert advisor.tokenizer.decode(ids[:first_line_length(advisor.tokenizer, ids)]) == "\n\nAbc def\n"


def test_sampling_follows_the_recorded_settings_not_the_models_generation_config(tiny_dir, question_server, tmp_path):
    advisor = LMAdvisor.load(str(tiny_dir), device="cpu")
    before = advisor.write(questions(6), sample=True, seed=5)
    advisor.model.generation_config.repetition_penalty = 3.0  # as Qwen2.5 ships 1.1: TRL never samples with it
    advisor.model.generation_config.top_k, advisor.model.generation_config.do_sample = 3, True
    assert advisor.write(questions(6), sample=True, seed=5) == before
    assert advisor.generation_options(sample=True)["repetition_penalty"] == 1.0
    settings = AdvisorTraining(**QUICK, extra={"temperature": 0.7, "top_p": 0.95})
    train_lm_advisor(text_env(question_server), advisor, tmp_path / "run", settings, progress=False, report_to="")
    assert (advisor.template.temperature, advisor.template.top_p, advisor.template.top_k) == (0.7, 0.95, 0)
    assert advisor.generation_options(sample=True)["temperature"] == 0.7
    saved = LMAdvisor.load(str(tmp_path / "run" / "advisor"))
    assert saved.template.temperature == 0.7 and saved.template.repetition_penalty == 1.0
    assert saved.write(questions(3), sample=True, seed=2) == advisor.write(questions(3), sample=True, seed=2)


def test_the_kl_reference_is_the_advisor_being_trained(tiny_dir, question_server, tmp_path):
    env, out = text_env(question_server), tmp_path / "run"
    train_lm_advisor(env, str(tiny_dir), out, AdvisorTraining(**QUICK), progress=False, report_to="")
    reference = json.loads((out / "start" / REFERENCE_FILE).read_text())
    assert reference["source"] == str(tiny_dir) and len(reference["weights_sha256"]) == 64
    other = build_tiny_advisor(tmp_path / "other", seed=1)
    longer = AdvisorTraining(**{**QUICK, "steps": 2})
    with pytest.raises(ConfigError, match=re.escape(str(out / "start")) + r" holds the model this run started from"):
        train_lm_advisor(env, str(other), out, longer, resume=True, progress=False, report_to="")
    (out / "start" / REFERENCE_FILE).unlink()  # a start saved before references were recorded: its weights are hashed
    record = train_lm_advisor(env, str(tiny_dir), out, longer, resume=True, progress=False, report_to="")
    assert record["resumed_from"].endswith("checkpoint-1") and record["steps"] == 2
    # Starting afresh with another Advisor replaces the reference.
    train_lm_advisor(env, str(other), out, AdvisorTraining(**QUICK), progress=False, report_to="")
    assert json.loads((out / "start" / REFERENCE_FILE).read_text())["source"] == str(other)
    assert last_checkpoint(out).name == "checkpoint-2" and last_checkpoint(tmp_path / "missing") is None


def test_a_run_whose_groups_all_tie_says_it_had_nothing_to_learn_from(tiny_dir, make_server, tmp_path, caplog):
    server = make_server(lambda m: "The answer is -1.")  # wrong whatever the signal: every group ties
    settings = AdvisorTraining(**{**QUICK, "steps": 2, "save_steps": 10})
    with caplog.at_level(logging.WARNING, logger="persuasion_agents"):
        record = train_lm_advisor(text_env(server), str(tiny_dir), tmp_path / "run", settings, progress=False,
                                  report_to="")
    assert record["tied"] == [(1, 1.0), (2, 1.0)] and record["tied_steps"] == 2
    assert "in 2 of the 2 steps every item's 4 signals were rewarded alike" in caplog.text


# -- the lowest versions admitted ----------------------------------------------------------------------------------

# pyproject.toml's lower bounds, and what those versions need beside this environment's
# packages: transformers 5.0 wants tokenizers<=0.23.0 and huggingface_hub<2, which still talks
# HTTP through httpx.
LOWEST = {"trl": "1.0.0", "transformers": "5.0.0", "peft": "0.13.0"}
COMPANIONS = ["tokenizers==0.22.2", "huggingface_hub==1.33.0", "httpx==0.28.1", "httpcore==1.0.9"]

LOWEST_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import gymnasium as gym
    import transformers, trl, peft
    from testkit import build_tiny_advisor, favour_newlines, recorded_generate
    from persuasion_agents.lm_advisor import LMAdvisor, training
    from persuasion_agents.lm_advisor.model import first_line_length
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining, grpo_config
    from persuasion_agents.lm_advisor.training import train_lm_advisor
    from persuasion_gym.testing import ScriptedChatServer

    out = Path(sys.argv[1])
    advisor = LMAdvisor.load(str(build_tiny_advisor(out / "tiny", bos=True)), device="cpu")
    favour_newlines(advisor)
    calls, completions = [], []
    recorded_generate(advisor.model, calls)
    scored = training.PersuasionReward.__call__
    def record(self, **kwargs):
        completions.extend(zip(kwargs["completions"], kwargs["completion_ids"]))
        return scored(self, **kwargs)
    training.PersuasionReward.__call__ = record
    settings = AdvisorTraining(steps=1, items_per_step=2, num_generations=4, save_steps=1,
                               extra={"temperature": 0.9, "seed": 3})
    config = grpo_config(settings, advisor, out / "run", report_to="")
    server = ScriptedChatServer(lambda m: "The answer is 1.").start()
    try:
        env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                       max_items=4, action_type="text")
        encoded = advisor.encode_prompts([advisor.prompt(q) for q in env.unwrapped.dataset.texts])
        record = train_lm_advisor(env, advisor, out / "run", settings, progress=False, report_to="")
        lora = train_lm_advisor(env, str(out / "tiny"), out / "lora",
                                AdvisorTraining(steps=1, items_per_step=2, num_generations=4, save_steps=1, lora=True),
                                progress=False, report_to="")
    finally:
        server.stop()
    import torch
    question, items, signal = env.unwrapped.dataset.texts[0], ["", "Think step by step."], "Check the units."
    got = advisor.log_likelihoods([question], [signal], items)  # the packed scheme under transformers 5.0
    tokens = advisor.tokenizer(signal, add_special_tokens=False)["input_ids"]
    by_hand = []
    for item in items:
        prompt = advisor.encode_prompts([advisor.prompt(question, item)])[0]
        with torch.no_grad():
            logp = torch.log_softmax(advisor.model(input_ids=torch.tensor([prompt + tokens])).logits[0].float()
                                     / advisor.template.temperature, dim=-1)
        by_hand.append(sum(float(logp[len(prompt) - 1 + t, token]) for t, token in enumerate(tokens)))
    print(json.dumps({
        "likelihood_error": float(abs(got[0] - by_hand).max()),
        "versions": [transformers.__version__, trl.__version__, peft.__version__],
        "temperature": config.temperature, "seed": config.seed, "steps": record["steps"], "lora_steps": lora["steps"],
        "prompts_as_encoded": bool(calls) and all(ids in encoded for call in calls for ids in call["prompts"]),
        "completions": len(completions), "eval": not advisor.model.training,  # both runs
        "cut_at_first_line": all(first_line_length(advisor.tokenizer, ids) == len(ids) for _, ids in completions),
        "lines_ended": sum("\\n" in text for text, _ in completions)}))
""")


def _lower_bounds() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    advisor = re.search(r"^advisor = \[(.*?)\]", text, re.S | re.M).group(1)
    return {name: version for name, version in re.findall(r'"(trl|transformers|peft)>=([\d.]+)', advisor)}


@pytest.mark.slow
def test_training_works_at_the_lowest_admitted_versions(tmp_path):
    """pyproject.toml's lowest trl, transformers and peft, installed beside this environment
    (pip --no-deps into a folder first on the path), build the GRPOConfig and train a step."""
    bounds = _lower_bounds()
    assert {name: f"{version}.0" if version.count(".") == 1 else version for name, version in bounds.items()} == LOWEST
    pip = [sys.executable, "-m", "pip"]
    probe = subprocess.run([*pip, "index", "versions", "trl"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or LOWEST["trl"] not in probe.stdout:
        pytest.skip(f"the package registry is unreachable: {(probe.stderr or probe.stdout).strip()[-300:]}")
    target = tmp_path / "lowest"
    install = subprocess.run([*pip, "install", "--quiet", "--no-deps", "--target", str(target),
                              *(f"{name}=={version}" for name, version in LOWEST.items()), *COMPANIONS],
                             capture_output=True, text=True, timeout=300)
    if install.returncode != 0 and re.search(r"(?i)connection|network|resolve|timed out|unreachable", install.stderr):
        pytest.skip(f"the package registry is unreachable: {install.stderr.strip()[-300:]}")
    assert install.returncode == 0, install.stderr[-2000:]
    path = [str(target), str(REPO / "tests"), str(REPO), str(REPO / "agents")]  # the lowest versions first
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TRL_EXPERIMENTAL_SILENCE": "1"}
    run = subprocess.run([sys.executable, "-c", LOWEST_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                         timeout=400, env=env)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["versions"] == [LOWEST["transformers"], LOWEST["trl"], LOWEST["peft"]]
    assert (result["temperature"], result["seed"], result["steps"], result["lora_steps"]) == (0.9, 3, 1, 1)
    assert result["prompts_as_encoded"] and result["eval"]  # TRL read write's prompt ids; eval mode after
    assert result["completions"] == 16 and result["cut_at_first_line"] and result["lines_ended"] >= 4, result
    assert result["likelihood_error"] < 1e-4, result


# -- the GPU check script ------------------------------------------------------------------------------------------

def _gpu_check(*args):
    return subprocess.run([sys.executable, "examples/gpu_check.py", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def test_the_gpu_check_runs_on_the_cpu_and_says_so():
    import torch

    run = _gpu_check("--device", "cpu") if torch.cuda.is_available() else _gpu_check()
    assert run.returncode == 0, run.stderr[-3000:]
    if not torch.cuda.is_available():
        assert "found no CUDA device: running on the CPU in float32 instead" in run.stdout
    assert "GRPO: on cpu, precision float32" in run.stdout and "the Advisor is on cpu, eval mode" in run.stdout
    assert "| log_likelihoods (4 signals x 3 items) |" in run.stdout and "ok: the GPU path ran on cpu" in run.stdout


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_check_trains_in_bfloat16_on_cuda():
    import torch

    run = _gpu_check("--device", "cuda")
    assert run.returncode == 0, run.stderr[-3000:]
    dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    assert f"precision {dtype}" in run.stdout and "the Advisor is on cuda:0, eval mode" in run.stdout


# -- what a run spends ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [{"gradient_accumulation_steps": 2}, {"num_iterations": 2}])
def test_the_signals_a_run_writes_are_what_its_plan_counts(tiny_dir, question_server, tmp_path, monkeypatch, extra):
    """TRL samples per_device_train_batch_size x gradient_accumulation_steps completions an
    optimizer step and reuses each batch num_iterations times: the plan's count is the run's."""
    from persuasion_agents.lm_advisor import training

    seen: list[int] = []
    scored = training.PersuasionReward.__call__

    def count(self, **kwargs):
        seen.append(len(kwargs["completions"]))
        return scored(self, **kwargs)

    monkeypatch.setattr(training.PersuasionReward, "__call__", count)
    settings = AdvisorTraining(steps=2, items_per_step=1, num_generations=2, save_steps=10, extra=extra)
    train_lm_advisor(text_env(question_server), str(tiny_dir), tmp_path / "run", settings, progress=False,
                     report_to="")
    assert sum(seen) == settings.signals_written() == {"gradient_accumulation_steps": 8, "num_iterations": 2}[
        next(iter(extra))]
