"""Testing helpers users can reuse: a real, scripted OpenAI-compatible server."""

from persuasion_gym.testing.loopback import ScriptedChatServer

__all__ = ["ScriptedChatServer"]
