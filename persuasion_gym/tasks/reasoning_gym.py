"""reasoning-gym: procedural generators with their own verifiers, as persuasion tasks.

Every generator of the ``reasoning-gym`` package (arithmetic, counting, logic, algorithmic and
symbolic tasks, each with difficulty settings) is a task here: its items come from the generator,
seeded, and the Receiver's answer is scored by the dataset's own ``score_answer``, partial credit
kept as a float reward. Extra ``[reasoning-gym]``.

Splits: ``train`` is the generator's items 0..size-1 under ``seed``; ``test`` those under
``seed + TEST_SEED_OFFSET``, leaving out any question the train split also asks, so a held-out
item is never one trained on. The dataset hash covers the generator's name, the package's
version, the full resolved config, the seed, the size and the split's items.

The Receiver answers in free text; ``extract_answer`` turns it into the string ``score_answer``
expects: the last ``<answer>...</answer>``, else the last ``\\boxed{...}``, else what follows
the last "answer is"/"Answer:" on its line, else the last non-empty line. When the gold answer
is a number, the answer is the first number of that (after its last ``=``), or with no such
marker the last number of the response.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
import logging
import re
import string
from collections.abc import Mapping
from typing import Any

from persuasion_gym.errors import ConfigError, DataError
from persuasion_gym.signals import REASONING_SIGNALS
from persuasion_gym.tasks.base import Dataset, Messages, Score, Task, TaskItem, ask, check_load_args
from persuasion_gym.tasks.numeric import _boxed_contents, _numbers, parse_number

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a careful problem solver. Answer the question, then end your reply with a line of the "
    "form 'Answer: X', where X is the final answer alone, in the form the question asks for."
)
SPLITS = ("train", "test")
# The test split's generator seed is the train split's plus this (a prime far beyond any size):
# generators seed item i with seed + i, so the two splits never share a generator seed.
TEST_SEED_OFFSET = 1_000_000_007
INSTALL_HINT = "pip install 'persuasion-gym[reasoning-gym]'"
DEFAULT_DATASET = "basic_arithmetic"

_TAG = re.compile(r"<answer>\s*(.*?)\s*(?:</answer>|$)", re.S | re.I)
_PHRASE = re.compile(r"(?:final answer|answer)\s*(?:is|was|would be|will be|equals|=|:)\s*[:=]?[ \t]*", re.I)
_MARKUP = " \t\n*_`$\"'"


def _library() -> Any:
    """The ``reasoning_gym`` package, or an error saying how to install it."""
    try:
        return importlib.import_module("reasoning_gym")
    except ImportError:
        raise ConfigError(f"reasoning-gym tasks need the reasoning-gym package: {INSTALL_HINT}") from None


def reasoning_gym_version() -> str | None:
    """The installed reasoning-gym's version (its distribution's: the module's own lags), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reasoning-gym")
    except PackageNotFoundError:
        return None


def dataset_names() -> list[str]:
    """Every dataset name the installed reasoning-gym knows, sorted."""
    return sorted(_library().factory.DATASETS)


def _clean(text: str) -> str:
    """An answer without the markup around it (bold, code, dollars, quotes) and a final full stop
    (an answer never ends in a decimal point: "42." is the sentence's end)."""
    text = text.strip().strip(_MARKUP)
    return text.removesuffix(".").strip().strip(_MARKUP)


def _marked(text: str) -> str | None:
    """What the response marks as its answer: the last answer tag, boxed expression or answer phrase."""
    tags = [m.group(1) for m in _TAG.finditer(text) if m.group(1).strip()]
    if tags:
        return tags[-1]
    boxed = [content for content in _boxed_contents(text) if content.strip()]
    if boxed:
        return boxed[-1]
    for phrase in reversed(list(_PHRASE.finditer(text))):
        rest = text[phrase.end():]
        line = rest.split("\n", 1)[0]
        if not line.strip(_MARKUP):  # "Answer:" alone on its line: the answer is on the next one
            line = next((candidate for candidate in rest.split("\n")[1:] if candidate.strip(_MARKUP)), "")
        if line.strip(_MARKUP):
            return line
    return None


def _number(text: str) -> str:
    """A number as the generators write them: an integral value without a decimal part."""
    value = parse_number(text)
    if value is not None and "/" not in text and value.denominator == 1 and "." in text:
        return str(int(value))
    return text


def extract_answer(response: str, numeric: bool = False) -> str | None:
    """The answer string of a free-text response (see the module's docstring); None when empty.
    ``numeric``: the gold answer is a number, so the answer is one too when the response holds any."""
    text = response.strip()
    if not text:
        return None
    marked = _marked(text)
    if numeric:
        if marked is not None:
            found = _numbers(marked.rsplit("=", 1)[-1]) or _numbers(marked)
            if found:
                return _number(found[0])
        found = _numbers(text)
        if found:
            return _number(found[-1])
    if marked is not None:
        return _clean(marked) or None
    lines = [line for line in text.splitlines() if line.strip(_MARKUP)]
    return _clean(lines[-1]) if lines else None


def _jsonable(value: Any) -> Any:
    """A config value as JSON holds it (tuples become lists), for results files and the hash."""
    return json.loads(json.dumps(value, default=str))


def _settings_text(config_cls: type) -> str:
    fields = [f for f in dataclasses.fields(config_cls) if f.name not in ("seed", "size")]

    def default(f: dataclasses.Field) -> Any:
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return "(required)"

    return ", ".join(f"{f.name}={default(f)!r}" for f in fields)


class ReasoningGymTask(Task):
    """One reasoning-gym dataset as a task: ``ReasoningGymTask("basic_arithmetic", size=200,
    seed=0, min_terms=2, max_terms=3)``. Keyword arguments (or ``config=``) are the generator's
    difficulty settings; ``size`` items per split."""

    name = "reasoning_gym"
    default_signals = REASONING_SIGNALS
    text_key = "question"
    charset = string.printable
    max_text_length = 4096

    def __init__(self, dataset: str = DEFAULT_DATASET, size: int = 200, seed: int = 0,
                 config: Mapping[str, Any] | None = None, **settings: Any):
        if not isinstance(dataset, str) or not dataset:
            raise ConfigError(f"dataset={dataset!r}: name a reasoning-gym dataset, e.g. dataset='basic_arithmetic'")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"size={size!r}: pass a positive number of items per split")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed={seed!r}: pass a non-negative integer")
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"config={config!r}: pass the generator's settings as a dict (or as keyword arguments)")
        self.dataset = dataset
        self.size = size
        self.seed = seed
        self.config: dict[str, Any] = {**(config or {}), **settings}
        for reserved in ("seed", "size"):
            if reserved in (config or {}):
                raise ConfigError(f"config holds {reserved!r}: pass {reserved}= to the task (or env) itself")
        # Built on first use: replaying a table needs neither the package nor the generator.
        self._generators: dict[str, Any] = {}
        self._resolved: dict[str, Any] | None = None
        self._splits: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._entries: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        config = "".join(f", {k}={v!r}" for k, v in self.config.items())
        return f"ReasoningGymTask({self.dataset!r}, size={self.size}, seed={self.seed}{config})"

    # -- the generator -----------------------------------------------------------------------
    def split_seed(self, split: str) -> int:
        return self.seed + (TEST_SEED_OFFSET if split == "test" else 0)

    def generator(self, split: str = "train") -> Any:
        """The split's reasoning-gym dataset (a ``ProceduralDataset``); clear errors for an
        unknown name or a config the generator rejects."""
        if split in self._generators:
            return self._generators[split]
        library = _library()
        known = library.factory.DATASETS
        if self.dataset not in known:
            close = difflib.get_close_matches(self.dataset, known, n=3)
            guess = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise ConfigError(
                f"unknown reasoning-gym dataset {self.dataset!r}: {guess}pass one of the {len(known)} names of "
                f"persuasion_gym.tasks.reasoning_gym.dataset_names() (reasoning-gym {reasoning_gym_version()})"
            )
        dataset_cls, config_cls = known[self.dataset]
        fields = {f.name for f in dataclasses.fields(config_cls)} - {"seed", "size"}
        unknown = [key for key in self.config if key not in fields]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, fields, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(
                f"{self.dataset} has no setting {', '.join(hints)}: its settings (with their defaults) are "
                f"{_settings_text(config_cls)}"
            )
        try:
            config = config_cls(**self.config, seed=self.split_seed(split), size=self.size)
            generator = dataset_cls(config=config)  # validates the config
        except (AssertionError, ValueError, TypeError) as exc:
            given = ", ".join(f"{k}={v!r}" for k, v in self.config.items()) or "its defaults"
            raise ConfigError(
                f"{self.dataset} rejects the settings {given}: {exc or type(exc).__name__}; fix them (its settings, "
                f"with their defaults: {_settings_text(config_cls)})"
            ) from None
        self._resolved = _jsonable({k: v for k, v in dataclasses.asdict(config).items() if k not in ("seed", "size")})
        self._generators[split] = generator
        return generator

    def resolved_config(self) -> dict[str, Any]:
        """The generator's whole config, defaults included (without seed and size)."""
        if self._resolved is None:
            self.generator("train")
        assert self._resolved is not None
        return self._resolved

    def settings(self) -> dict[str, Any]:
        """What rebuilds the items and the scorer: the dataset, the package's version, the config
        as given and as resolved, the seed and the size (``from_settings`` reads it back)."""
        return {"dataset": self.dataset, "reasoning_gym": reasoning_gym_version(), "config": _jsonable(self.config),
                "resolved_config": self.resolved_config(), "seed": self.seed, "size": self.size,
                "test_seed_offset": TEST_SEED_OFFSET}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ReasoningGymTask:
        """The task a table recorded (its ``task_settings``), to re-score it or to rebuild its items."""
        if not settings or "dataset" not in settings:
            raise DataError("the table records no reasoning-gym settings (dataset, config, seed, size): pass "
                            "task=ReasoningGymTask(dataset, size=, seed=, **config) as it was recorded")
        recorded, installed = settings.get("reasoning_gym"), reasoning_gym_version()
        if recorded and installed and recorded != installed:
            logger.warning("the table was recorded with reasoning-gym %s, this is %s: its items may differ "
                           "(checked item by item)", recorded, installed)
        return cls(settings["dataset"], size=int(settings["size"]), seed=int(settings["seed"]),
                   config=dict(settings.get("config") or {}))

    def _generate(self, split: str) -> list[tuple[int, dict[str, Any]]]:
        """The split's (generator index, entry) pairs; the test split leaves out train's questions."""
        if split in self._splits:
            return self._splits[split]
        generator = self.generator(split)
        entries = []
        for index in range(self.size):
            try:
                entry = generator[index]
            except Exception as exc:  # a generator's own failure, under this config
                raise DataError(f"reasoning-gym's {self.dataset} failed to generate item {index} of the {split} split "
                                f"({type(exc).__name__}: {exc}): try other settings or another seed") from None
            entries.append((index, entry))
        if split == "test":
            seen = {entry["question"] for _, entry in self._generate("train")}
            entries = [(index, entry) for index, entry in entries if entry["question"] not in seen]
            if not entries:
                raise DataError(f"every {self.dataset} test question is also a train question under these settings "
                                "(too few distinct items): raise the difficulty or lower size=")
        self._splits[split] = entries
        for index, entry in entries:
            self._entries[f"{self.dataset}/{split}/{index}"] = entry
        texts = [str(entry["question"]) for _, entry in entries]
        # Text observations: one space for both splits holds every character either asks.
        self.charset = "".join(sorted(set(self.charset) | set("".join(texts))))
        self.max_text_length = max([self.max_text_length, *map(len, texts)])
        return entries

    # -- the Task interface ------------------------------------------------------------------
    def load(self, split: str = "train", data_path: str | None = None, max_items: int | None = None) -> Dataset:
        check_load_args(f"reasoning-gym {self.dataset}", split, SPLITS, max_items)
        if data_path is not None:
            raise ConfigError("reasoning-gym items are generated, not read: drop data_path (choose them with "
                              "dataset=, size=, seed= and the generator's settings)")
        other = "test" if split == "train" else "train"
        self._generate(other)  # both splits' characters in the observation space
        entries = self._generate(split)
        items = tuple(TaskItem(f"{self.dataset}/{split}/{index}", str(entry["question"]), _gold(entry))
                      for index, entry in entries)
        digest = hashlib.sha256(json.dumps(
            {"settings": self.settings(), "split": split,
             "items": [[item.item_id, item.text, item.gold] for item in items]}, sort_keys=True).encode())
        source = f"reasoning-gym=={reasoning_gym_version()}:{self.dataset}?seed={self.split_seed(split)}"
        return Dataset(self.dataset, split, items[:max_items], source, digest.hexdigest())

    def build_messages(self, item: TaskItem, context: str = "") -> Messages:
        return ask(SYSTEM_PROMPT, f"Question: {item.text}", context)

    def entry(self, item: TaskItem) -> dict[str, Any]:
        """The generator's entry of an item (question, answer, metadata), generated again when
        this task has not made it yet (a table's item), and checked to be the same question."""
        entry = self._entries.get(item.item_id)
        if entry is None:
            dataset, split, index = _parse_id(item.item_id)
            if dataset != self.dataset or split not in SPLITS:
                raise DataError(f"item {item.item_id} is not an item of this task ({self!r}): score it with the task "
                                "that made it")
            self._generate(split)
            entry = self._entries.get(item.item_id)
            if entry is None:
                entry = self.generator(split)[index]
        if str(entry["question"]) != item.text:
            raise DataError(
                f"item {item.item_id} is not the question reasoning-gym {reasoning_gym_version()} generates for "
                f"{self!r}: score it with the reasoning-gym version and settings that made it"
            )
        return entry

    def score(self, item: TaskItem, response: str) -> Score:
        entry = self.entry(item)
        answer = extract_answer(response, numeric=parse_number(item.gold) is not None)
        generator = self.generator(_parse_id(item.item_id)[1])
        try:
            reward = float(generator.score_answer(answer, entry))
        except Exception as exc:  # a scorer that chokes on a malformed answer: that answer is wrong
            logger.debug("%s's score_answer raised on %r: %s", self.dataset, answer, exc)
            return Score(answer, False, 0.0, {"score_error": f"{type(exc).__name__}: {exc}"})
        reward = reward if reward == reward else 0.0  # NaN scores nothing
        return Score(answer, reward >= 1.0, reward)


def _gold(entry: Mapping[str, Any]) -> str:
    """The gold answer shown in ``info["gold"]`` (some datasets score from metadata: then "")."""
    answer = entry.get("answer")
    return "" if answer is None else str(answer)


def _parse_id(item_id: str) -> tuple[str, str, int]:
    dataset, _, rest = item_id.rpartition("/")
    name, _, split = dataset.rpartition("/")
    try:
        return name, split, int(rest)
    except ValueError:
        raise DataError(f"item id {item_id!r} is not a reasoning-gym item's (DATASET/SPLIT/INDEX)") from None


__all__ = ["ReasoningGymTask", "dataset_names", "extract_answer", "reasoning_gym_version"]
