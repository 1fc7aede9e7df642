"""Default signals for general reasoning tasks (reasoning-gym's generators: arithmetic, counting,
logic, algorithmic and symbolic puzzles).

Each is a way of going about a problem that suits some items and some Receivers and not others,
whatever the task: which one helps where is what the Advisor learns. Index 0 is the empty signal
(the no-signal baseline). Replace them with ``signals=`` for a task of your own.
"""

from persuasion_gym.signals.library import SignalLibrary

REASONING_SIGNALS = SignalLibrary(
    [
        "",
        "Think step by step: write out every intermediate result before the final answer.",
        "Give only the final answer, with no explanation.",
        "Read the question again and say exactly what it asks for before answering.",
        "Break the problem into small parts and solve them one at a time.",
        "Work it out carefully, paying attention to signs, order and every small detail.",
        "Before giving the answer, check it: go over each step again and correct any mistake.",
        "Follow the answer format the question asks for exactly.",
        "Write down every fact the question gives, then use each of them.",
        "Solve it the simplest way you can; do not overthink it.",
    ]
)
