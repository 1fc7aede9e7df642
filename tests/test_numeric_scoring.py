from fractions import Fraction

import pytest

from persuasion_gym.tasks import GSM8KTask, TaskItem, extract_numeric_answer, numbers_match, parse_number


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        ("#### 1,234", "1234"),
        ("So the total is 5 + 3 = 8. The answer is 42.", "42"),
        ("The answer is 42 apples.", "42"),
        ("the final answer is: $18.", "18"),
        ("Answer: 7 dollars per hour, which is 56 per day", "7"),
        ("Thus \\boxed{42} is the result.", "42"),
        ("\\boxed{\\frac{3}{4}}", "3/4"),
        ("The answer is \\boxed{1,000}.", "1000"),
        ("It costs $1,234.50 in total.", "1234.50"),
        ("The answer is -3", "-3"),
        ("The answer is −7.", "-7"),
        ("The answer is $-5.", "-5"),
        ("He is left with -$5.", "-5"),
        ("The answer is 2/5", "2/5"),
        ("The answer is 50%.", "50"),
        ("She has 12 apples, then 8-3 = 5 more, so 17 in all", "17"),
        ("8 - 3", "3"),
        ("First 10. Then 20. So 30.", "30"),
        ("0.5 of them", "0.5"),
        ("I cannot solve this.", None),
        ("", None),
    ],
)
def test_extract_numeric_answer(text, expected):
    assert extract_numeric_answer(text) == expected


def test_answer_phrase_beats_later_numbers_and_hashes_beat_phrase():
    assert extract_numeric_answer("The answer is 12. (Check: 3 * 4 = 12, 12 + 0 = 99)") == "12"
    assert extract_numeric_answer("The answer is 12.\n#### 13") == "13"
    assert extract_numeric_answer("The answer is 5. Actually, the answer is 6.") == "6"


@pytest.mark.parametrize(
    "predicted, gold, match",
    [
        ("72", "72", True),
        ("72.0", "72", True),
        ("72.00", "72", True),
        ("1234.50", "1234.5", True),
        ("2/5", "0.4", True),
        ("-3", "-3", True),
        ("0.3333333", "1/3", True),
        ("71", "72", False),
        ("-72", "72", False),
        (None, "72", False),
        ("abc", "72", False),
        ("1/0", "1", False),
    ],
)
def test_numbers_match(predicted, gold, match):
    assert numbers_match(predicted, gold) is match


def test_parse_number_is_exact():
    assert parse_number("1,234.5") == Fraction(2469, 2)
    assert parse_number("$18.") == 18
    assert parse_number(None) is None


def test_gsm8k_task_scores_a_response():
    task = GSM8KTask()
    item = TaskItem("x", "How many?", "1234.5")
    right = task.score(item, "It costs $1,234.50 in total.")
    assert (right.answer, right.correct, right.reward) == ("1234.50", True, 1.0)
    wrong = task.score(item, "The answer is 1234.")
    assert (wrong.correct, wrong.reward) == (False, 0.0)
