"""Testing helpers users can reuse: a real, scripted OpenAI-compatible server, in a thread or
a process of its own."""

from persuasion_gym.testing.loopback import ScriptedChatServer, server_process

__all__ = ["ScriptedChatServer", "server_process"]
