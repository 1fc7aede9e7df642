"""How the commands declare their flags: one help formatter, the flag types, the flags every
command shares, and flags built from a settings dataclass's fields (their defaults and help).

A command module (this package's own, or one another package names in the
``persuasion_gym.commands`` entry-point group, see ``persuasion_gym.cli.main``) makes its
parser with ``add_command`` and ends it with ``add_budget_flag`` and ``add_run_flags``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any, NoReturn

from persuasion_gym.errors import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse's errors as this command's other errors: one line, the fix, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"persuasion-gym: error: {message} (see `{self.prog} --help`)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default. argparse's ArgumentDefaultsHelpFormatter would
    print "(default: None)" for the flags whose unset value means something (every item, the
    env's signals): those say it in words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or not action.option_strings or unset:
            return text
        return f"{text} (default: %(default)s)"


def add_command(commands: argparse._SubParsersAction, name: str, summary: str) -> argparse.ArgumentParser:
    """A command's parser: its summary in the command list and atop its help."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=summary,
                                                          formatter_class=HelpFormatter)
    return parser


def _at_least(value: str, minimum: int, hint: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number: pass {hint}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"{number} is below {minimum}: pass {hint}")
    return number


def count(value: str) -> int:
    """A flag counting items, samples or steps: a whole number of at least 1."""
    return _at_least(value, 1, "1 or more")


def cap(value: str) -> int:
    """A cap on calls: a whole number, 0 for none."""
    return _at_least(value, 0, "0 (no cap) or more")


def add_fields(parser: argparse.ArgumentParser | argparse._ArgumentGroup, settings: type, names: Iterable[str],
               prefix: str = "") -> None:
    """One flag per named field of the dataclass ``settings`` (``--items-per-step`` for
    ``items_per_step``), its default the field's and its help the field's ``metadata["help"]``
    (after ``prefix``, e.g. the one mode of the command it is for). The field's type gives the
    flag's: a bool is a switch, an int with ``metadata["min"] == 1`` a ``count``;
    ``metadata["choices"]`` limits the values."""
    fields = {field.name: field for field in dataclasses.fields(settings)}
    hints = typing.get_type_hints(settings)
    for name in names:
        field = fields[name]
        if field.default is dataclasses.MISSING or "help" not in field.metadata:
            raise TypeError(f"{settings.__name__}.{name} needs a default and metadata['help'] to be a flag")
        kwargs: dict[str, Any] = {"default": field.default, "help": prefix + field.metadata["help"]}
        kind = _flag_type(hints[name])
        if kind is bool:
            kwargs["action"] = "store_true"
        elif kind is int and field.metadata.get("min") == 1:
            kwargs["type"] = count
        elif kind in (int, float):
            kwargs["type"] = kind
        if "choices" in field.metadata:
            kwargs["choices"] = list(field.metadata["choices"])
        parser.add_argument("--" + name.replace("_", "-"), **kwargs)


def _flag_type(annotation: Any) -> Any:
    """``int`` for ``int`` and ``int | None`` (None is the unset default, never typed in)."""
    if isinstance(annotation, types.UnionType):
        (kind,) = (arg for arg in typing.get_args(annotation) if arg is not type(None))
        return kind
    return annotation


def field_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The values of the flags ``add_fields`` made, as keyword arguments of the dataclass."""
    return {name: getattr(args, name) for name in names}


def add_budget_flag(parser: argparse.ArgumentParser) -> None:
    """``--max-calls``, for the commands that ask a Receiver many times."""
    from persuasion_gym.receivers.budget import DEFAULT_MAX_CALLS

    parser.add_argument("--max-calls", type=cap, default=DEFAULT_MAX_CALLS,
                        help="the most new Receiver calls the command may make: its plan, printed first, is refused "
                             "past it before any call, and it stops there while running (0: no cap)")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """``-v`` and ``--ray-address``, last in every command that asks a Receiver."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also log every HTTP request and retry (httpx, openai), and print an error's traceback")
    parser.add_argument("--ray-address", default=None,
                        help="join this Ray cluster for ray: specs and --algo rllib-ppo (default: $RAY_ADDRESS, "
                             "else Ray starts on this machine)")


def names(value: str, flag: str) -> list[str]:
    """A comma-separated flag's entries, spaces around them dropped ("none, ucb" is two)."""
    entries = [name.strip() for name in value.split(",")]
    if not all(entries):
        raise ConfigError(f"{flag} {value!r} has an empty entry: separate the names with single commas")
    return entries
