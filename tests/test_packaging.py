"""What the distribution installs: persuasion_gym, persuasion_agents and persuasion_verifiers (the
name verifiers imports for its environment), and no top-level ``agents`` (OpenAI's agents SDK owns
that name)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_has_no_top_level_agents_module(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info next to the pyproject.toml, and
    # the checkout is shared with whoever else works in it. The copy holds what the build reads
    # (pyproject's readme is README.md; the license is an SPDX expression, no file).
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for folder in ("persuasion_gym", "agents", "persuasion_verifiers"):
        shutil.copytree(REPO / folder, source / folder, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = wheels.glob("persuasion_gym-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"persuasion_gym", "persuasion_agents", "persuasion_verifiers"}
    assert "persuasion_agents/lm_advisor/training.py" in names and "persuasion_agents/rllib_ppo.py" in names


def test_the_installed_package_imports_as_persuasion_agents(tmp_path):
    # From outside the checkout, so only what is installed can be imported.
    probe = ("import importlib.util as u; import persuasion_agents.lm_advisor, persuasion_agents.benchmark; "
             "print(u.find_spec('agents') is None)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"
