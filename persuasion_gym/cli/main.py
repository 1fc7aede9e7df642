"""The ``persuasion-gym`` command line.

The env package's own commands (``envs``, ``check``, ``record``, ``rescore``, ``serve``,
``cache``) need no Advisor. Other packages add theirs by name, in the ``persuasion_gym.commands``
entry-point group: ``NAME = "module:function"``, the function taking the subparsers action and
adding the command's parser (see ``persuasion_gym.cli.arguments``), resolved when the parser is
built, as Gymnasium resolves an env's ``entry_point`` string on use. This distribution's
Advisors (``persuasion_agents.commands``) add ``train``, ``bench``, ``compare`` and ``demo``; without
them the env commands work alike.

A command's parser sets ``run`` (the command, returning the exit code) and may set ``resumable``
(it asks a Receiver many times: Ctrl-C counts the answers saved) and ``rerun(args,
after_failure)`` (what running it again does; "" where its own message says it).

Bad input ends in one line, ``persuasion-gym: error: ...`` naming the problem and the fix, and
exit code 2 (``-v`` adds the traceback); Ctrl-C says what is saved and exits 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from persuasion_gym.cli.arguments import Parser, names
from persuasion_gym.cli.cache_command import add_cache_parser
from persuasion_gym.cli.check_command import add_check_parser, add_envs_parser
from persuasion_gym.cli.inputs import check_env_id
from persuasion_gym.cli.record_command import add_record_parser, add_rescore_parser
from persuasion_gym.cli.serve_command import add_serve_parser
from persuasion_gym.errors import ConfigError, PersuasionGymError, ReceiverError

if TYPE_CHECKING:
    from persuasion_gym.receivers import ResponseCache

COMMAND_GROUP = "persuasion_gym.commands"
AddParser = Callable[[argparse._SubParsersAction], argparse.ArgumentParser]

# This package's commands, by the function that adds each.
_OWN: dict[str, AddParser] = {"envs": add_envs_parser, "check": add_check_parser, "record": add_record_parser,
                              "rescore": add_rescore_parser, "serve": add_serve_parser, "cache": add_cache_parser}
# Where the help lists the commands (the Advisors' after rescore, as they always were); commands
# not named here follow in the entry points' order.
_ORDER = ("envs", "check", "record", "rescore", "train", "bench", "compare", "demo", "serve", "cache")


def installed_commands() -> dict[str, EntryPoint]:
    """The commands other installed packages add, by name (a name of this package's is skipped)."""
    return {point.name: point for point in entry_points(group=COMMAND_GROUP) if point.name not in _OWN}


def _add_installed(commands: argparse._SubParsersAction, point: EntryPoint) -> None:
    """An installed command; one whose module cannot be imported (a broken or partial install)
    is left out, saying why, so that the other commands still work."""
    try:
        add: AddParser = point.load()
    except ImportError as exc:
        print(f"persuasion-gym: the {point.name} command is unavailable: {point.value} cannot be imported ({exc}); "
              "reinstall persuasion-gym (pip install 'persuasion-gym[all]')", file=sys.stderr)
        return
    add(commands)


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser: this package's and the installed ones (``installed_commands``)."""
    from persuasion_gym import __version__

    parser = Parser(prog="persuasion-gym", description="Bayesian-persuasion alignment environments.")
    parser.add_argument("--version", action="version", version=f"persuasion-gym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    installed = installed_commands()
    for name in (*_ORDER, *(name for name in installed if name not in _ORDER)):
        if name in _OWN:
            _OWN[name](commands)
        elif name in installed:
            _add_installed(commands, installed[name])
    return parser


_AGAIN = "run the same command again and only the missing ones are asked"


def _rerun(args: argparse.Namespace, after_failure: bool = False) -> str:
    """What the same command again does: every answer that came back is cached."""
    rerun = getattr(args, "rerun", None)
    return rerun(args, after_failure) if rerun is not None else _AGAIN


def _rerun_hint(args: argparse.Namespace, exc: ReceiverError) -> str:
    """What running the command again does after a Receiver failure: nothing where a rerun
    fails alike (a ConfigError: missing key, bad spec), or where the command says it in its own
    message."""
    if isinstance(exc, ConfigError):
        return ""
    hint = _rerun(args, after_failure=True)
    return "; " + hint if hint else ""


def _interrupted(args: argparse.Namespace, cache: ResponseCache | None, before: int) -> str:
    """What Ctrl-C leaves: the answers saved since the command began, and how to go on."""
    if cache is None:
        return "persuasion-gym: interrupted"
    saved = len(cache) - before
    return (f"persuasion-gym: interrupted: {saved} new answer{'s are' if saved != 1 else ' is'} saved in the response "
            f"cache ({cache.path}); {_rerun(args)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    if getattr(args, "ray_address", None):
        os.environ["RAY_ADDRESS"] = args.ray_address  # read by every Ray join (persuasion_gym.cluster)
    # The notes of this package and of the commands' packages (which Receiver 'auto' chose, where
    # replicas run) always; the SDK's line per HTTP request and retry only with -v: they drown the
    # progress bars and the summary.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    packages = {"persuasion_gym", *(point.module.partition(".")[0] for point in installed_commands().values())}
    for package in packages:
        logging.getLogger(package).setLevel(logging.INFO)
    cache, before = None, 0
    try:
        if hasattr(args, "env"):
            for env_id in names(args.env, "--env"):
                check_env_id(env_id)
            args.env = ",".join(names(args.env, "--env"))
        if getattr(args, "resumable", False):  # the one store every Receiver of the command writes to
            from persuasion_gym.receivers import ResponseCache
            from persuasion_gym.receivers.cache import default_cache_path

            cache = ResponseCache(default_cache_path())
            before = len(cache)
        from persuasion_gym.receivers.budget import limit_calls

        with limit_calls(getattr(args, "max_calls", None)):  # --max-calls holds for every Receiver made
            return args.run(args)
    except (PersuasionGymError, ValueError) as exc:
        if verbose:
            traceback.print_exc()
        message = str(exc)
        if isinstance(exc, ReceiverError):  # every answer that came back is cached: say what a rerun does
            message += _rerun_hint(args, exc)
        print(f"persuasion-gym: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print(_interrupted(args, cache, before), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
