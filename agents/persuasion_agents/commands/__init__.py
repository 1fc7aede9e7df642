"""The Advisors' commands of ``persuasion-gym``: ``train``, ``bench``, ``compare`` and ``demo``.

The env package finds them by name, in the ``persuasion_gym.commands`` entry-point group of
``pyproject.toml`` (``persuasion_gym.cli.main``): each module's ``add_parser`` adds its command.
"""
