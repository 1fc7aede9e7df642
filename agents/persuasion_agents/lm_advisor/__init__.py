"""The paper's Advisor: a small causal LM that writes its signals, trained by policy gradient.

- ``LMAdvisor``: load (``embedded``, a hub id, a directory, a ``.gguf`` file), write signals,
  score them under every information item (the committed scheme), ``save_pretrained``.
- ``PersuasionReward``: a TRL reward function over any persuasion env in text mode.
- ``train_lm_advisor`` (training.py): GRPO with a group baseline and a KL penalty, checkpoints,
  resume; ``AdvisorTraining`` and the ``GRPOConfig`` it makes (grpo_config.py).
- ``LMAdvisorPolicy``: the Advisor behind the ``Policy`` protocol, for ``bench``.
"""

from persuasion_agents.lm_advisor.model import AdvisorInfo, AdvisorTemplate, LMAdvisor
from persuasion_agents.lm_advisor.reward import PersuasionReward

__all__ = ["AdvisorInfo", "AdvisorTemplate", "LMAdvisor", "PersuasionReward"]
