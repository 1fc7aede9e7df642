"""Default signals for writing Python functions from a specification (HumanEval, MBPP).

Each points the Receiver at one common cause of failing tests; which one helps depends on
the problem. Index 0 is the empty signal (the no-signal baseline).
"""

from persuasion_gym.signals.library import SignalLibrary

CODE_SIGNALS = SignalLibrary(
    [
        "",
        "Before writing code, restate the task in one sentence and name the algorithm you will use.",
        "Handle the edge cases explicitly: empty inputs, a single element, zero, negative numbers, "
        "and duplicates.",
        "Work through each example in the docstring by hand and make sure your code returns exactly "
        "the value shown.",
        "Return exactly the type the signature and examples show (a list, not a generator; an int, "
        "not a float).",
        "Watch loop bounds and slice indices: check the first and last iteration for off-by-one errors.",
        "Prefer the simplest correct solution built from Python built-ins (sorted, sum, zip, enumerate, "
        "set, dict).",
        "Do not modify the function's arguments in place; work on a copy.",
        "Read the specification for words like 'strictly', 'unique', 'sorted' and 'case-insensitive' "
        "and make the code honour each of them.",
        "Write the function body only after writing down the input and output of one small example.",
    ]
)
