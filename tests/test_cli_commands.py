"""How ``persuasion-gym`` is put together: the env package's commands need no Advisor and import
none; the Advisors' commands are found by entry-point name; flags come from settings fields."""

import argparse
import ast
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pytest

from persuasion_gym.cli.arguments import HelpFormatter, Parser, add_fields
from persuasion_gym.cli.main import build_parser

from testkit import REPO


def test_the_env_package_imports_nothing_of_the_advisors():
    for path in sorted((REPO / "persuasion_gym").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m.split(".")[0] == "persuasion_agents" for m in modules), (path, ast.unparse(node))


def test_the_advisors_commands_are_found_by_name_and_listed_where_they_were():
    found = {point.name: point.value for point in entry_points(group="persuasion_gym.commands")}
    assert found == {name: f"persuasion_agents.commands.{name}:add_parser"
                     for name in ("train", "bench", "compare", "demo")}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == ["envs", "check", "record", "rescore", "train", "bench", "compare", "demo",
                                      "serve", "cache"]


def test_the_env_commands_work_without_the_advisors(tmp_path):
    # persuasion_agents made unimportable, as where it is not installed.
    probe = ("import sys; sys.modules['persuasion_agents'] = None\n"
             "from persuasion_gym.cli.main import main\n"
             "sys.exit(main(sys.argv[1:]))")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)

    listed = run("envs")
    assert listed.returncode == 0 and "Persuasion-GSM8K-v0" in listed.stdout.splitlines()
    assert "the train command is unavailable: persuasion_agents.commands.train:add_parser cannot be imported" \
        in listed.stderr
    missing = run("train", "--out", "x")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "invalid choice: 'train'" in missing.stderr.splitlines()[-1]


@dataclass
class _Settings:
    steps: int = field(default=3, metadata={"help": "how many steps", "min": 1})
    rate: float = field(default=0.5, metadata={"help": "the rate"})
    items: int | None = field(default=None, metadata={"help": "the first N items (default: all)", "min": 1})
    mode: str = field(default="a", metadata={"help": "the mode", "choices": ("a", "b")})
    fast: bool = field(default=False, metadata={"help": "go fast"})
    seed: int = 0


def test_flags_take_their_default_help_and_type_from_the_settings_fields(capsys):
    parser = Parser(prog="p", formatter_class=HelpFormatter)
    add_fields(parser, _Settings, ["steps", "rate", "items", "mode", "fast"], prefix="x: ")
    assert vars(parser.parse_args([])) == {"steps": 3, "rate": 0.5, "items": None, "mode": "a", "fast": False}
    given = parser.parse_args(["--steps", "7", "--rate", "1e-3", "--items", "2", "--mode", "b", "--fast"])
    assert (given.steps, given.rate, given.items, given.mode, given.fast) == (7, 1e-3, 2, "b", True)
    shown = " ".join(parser.format_help().split())
    assert "--steps STEPS x: how many steps (default: 3)" in shown
    assert "x: the first N items (default: all)" in shown and "x: go fast" in shown
    with pytest.raises(SystemExit):
        parser.parse_args(["--steps", "0"])
    assert "argument --steps: 0 is below 1: pass 1 or more" in capsys.readouterr().err
    with pytest.raises(TypeError, match=r"_Settings.seed needs a default and metadata\['help'\]"):
        add_fields(parser, _Settings, ["seed"])


def test_the_lm_advisor_flags_default_to_advisor_training():
    from persuasion_agents.commands.options import advisor_training
    from persuasion_agents.lm_advisor import AdvisorTemplate
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining

    parser = build_parser()
    for command in (["train", "--out", "x"], ["bench", "--out", "x"], ["compare", "--out", "x"]):
        assert advisor_training(parser.parse_args(command)) == AdvisorTraining()
    assert parser.parse_args(["train", "--out", "x"]).max_new_tokens == AdvisorTemplate().max_new_tokens
