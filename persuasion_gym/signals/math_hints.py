"""Default signals for grade-school math word problems (GSM8K).

Each is a reasoning strategy or hint that helps on some problems and not others, which is
what makes the choice worth learning. Index 0 is the empty signal (the no-signal baseline).
"""

from persuasion_gym.signals.library import SignalLibrary

MATH_SIGNALS = SignalLibrary(
    [
        "",
        "Think step by step: write out every intermediate calculation before the final answer.",
        "Before calculating, list each quantity given in the problem and what it refers to.",
        "Break the problem into smaller sub-questions and answer them one at a time.",
        "Watch the units (hours and minutes, dollars and cents, dozens): convert them to the "
        "same unit before calculating.",
        "Write an equation for the unknown quantity, then solve it.",
        "Percentages and fractions apply to a base amount: work out which amount each one "
        "applies to before multiplying.",
        "Keep a running total: track how each event in the story changes the amount.",
        "Answer exactly the quantity the question asks for, not an intermediate result.",
        "After finding the answer, check it by putting it back into the problem.",
    ]
)
