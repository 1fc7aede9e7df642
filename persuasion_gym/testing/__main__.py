"""``python -m persuasion_gym.testing --port 8000``: run the scripted loopback server."""

from persuasion_gym.testing.loopback import main

main()
