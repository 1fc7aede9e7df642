"""Serving persuasion envs to trainers in other processes and on other machines.

``persuasion_gym.serving.sessions``: many sessions over one env, their steps played as one
batch (no dependency). ``persuasion_gym.serving.openenv``: that as an OpenEnv environment on
openenv-core's own server, and its typed client (``persuasion-gym serve``; the ``[openenv]``
extra and openenv-core itself, installed as ``OPENENV_INSTALL`` says).
"""

# The openenv-core releases the OpenEnv server is tested against: 0.2.2 (the first with the
# async client and the current session protocol) and 0.3.0.
OPENENV_RANGE = ">=0.2.2,<0.4"
# openenv-core without its declared dependencies (its CLI, the gradio web UI, the MCP server):
# the [openenv] extra holds what its server and client import.
OPENENV_INSTALL = f"pip install 'persuasion-gym[openenv]' && pip install --no-deps 'openenv-core{OPENENV_RANGE}'"
