"""``persuasion-gym serve``: one env to OpenEnv trainers, many sessions over one Receiver."""

from __future__ import annotations

import argparse
import json
from typing import Any

from persuasion_gym.cli.arguments import add_command, add_run_flags, cap, count
from persuasion_gym.cli.inputs import make_receiver, read_signals
from persuasion_gym.errors import ConfigError


def _serve(args: argparse.Namespace) -> int:
    """Serve one env to OpenEnv trainers until interrupted: sessions over one Receiver, cache
    and sandbox, the steps that arrive together played as one batch (persuasion_gym.serving)."""
    from persuasion_gym.serving.openenv import serve  # says how to install openenv-core, if it is missing
    from persuasion_gym.serving.sessions import SharedEnv

    if args.env in ("Persuasion-Prosecutor-v0", "Persuasion-Classic-v0"):
        raise ConfigError(f"serve --env {args.env}: a classic game has no task items for a remote Advisor to read; "
                          "serve a task env (Persuasion-GSM8K-v0, Persuasion-HumanEval-v0, ...) or a table")
    kwargs: dict[str, Any] = {}
    for entry in args.env_arg:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-arg {entry!r}: write KEY=VALUE, e.g. --env-arg max_signal_length=256")
        try:
            kwargs[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key.strip()] = value  # a plain string
    given = {"split": args.split, "max_items": args.n_items, "data_path": args.data_path, "sandbox": args.sandbox,
             "protocol": args.protocol, "samples_per_cell": args.samples_per_cell}
    kwargs.update({k: v for k, v in given.items() if v is not None})
    if args.sandbox and not any(code in args.env for code in ("HumanEval", "MBPP")):
        raise ConfigError(f"--sandbox is for code envs (Persuasion-HumanEval-v0, Persuasion-MBPP-v0), not {args.env}")
    if args.signals_file:
        kwargs["signals"] = read_signals(args.signals_file)
    table = args.env == "Persuasion-Table-v0"
    if table:
        kwargs.setdefault("table", args.table)
        if kwargs["table"] is None:
            raise ConfigError("serve --env Persuasion-Table-v0 needs --table PATH: the recorded table to serve")
    elif args.table:
        raise ConfigError("--table is for --env Persuasion-Table-v0; a task env replays a table with --receiver "
                          "table:PATH")
    elif args.receiver.startswith("table:"):
        kwargs["receiver"], table = args.receiver, True
    else:
        kwargs["receiver"] = make_receiver(args.receiver, cache=not args.no_cache)
    kwargs.setdefault("action_type", args.action_type or ("index" if table else "text"))
    shared = SharedEnv.make(args.env, kwargs, args.batch_window_ms / 1000, args.seed)
    serve(shared, args.host, args.port, args.max_sessions)
    return 0


def add_serve_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    sv = add_command(commands, "serve", "serve an env to OpenEnv trainers (TRL, SkyRL): many sessions over one "
                                        "Receiver, cache and sandbox, their steps batched (extra [openenv])")
    sv.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env to serve: any registered persuasion env")
    sv.add_argument("--receiver", default="auto",
                    help="receiver spec, or table:PATH; give an endpoint ?max_concurrency= of at least --max-sessions")
    sv.add_argument("--split", default=None, help="the split (default: the env's)")
    sv.add_argument("--n-items", type=count, default=None, help="the split's first N items (default: all)")
    sv.add_argument("--data-path", default=None,
                    help="the data set's file or directory (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    sv.add_argument("--signals-file", default=None,
                    help='a JSON list of signal texts, e.g. ["", "Think step by step."] (default: the env\'s)')
    sv.add_argument("--table", default=None,
                    help="--env Persuasion-Table-v0: the recorded table to serve (default: none; it needs one)")
    sv.add_argument("--action-type", default=None, choices=["text", "index"],
                    help="text: a signal's text or its library index; index: indices only (default: text, index on a "
                         "table)")
    sv.add_argument("--protocol", default=None, choices=["direct", "posterior", "prior", "none"],
                    help="what the Receiver reads (default: the env's, direct: the signal)")
    sv.add_argument("--samples-per-cell", type=count, default=None,
                    help="Receiver samples per (item, signal); visits cycle through them (default: 1)")
    sv.add_argument("--sandbox", default=None, choices=["local", "ray"],
                    help="code envs: run the programs here or as tasks on the Ray cluster's CPUs (default: local)")
    sv.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="any other argument of the env, repeatable; VALUE is read as JSON if it parses: --env-arg "
                         "max_signal_length=256 (default: none)")
    sv.add_argument("--no-cache", action="store_true", help="always call the Receiver")
    sv.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000, help="the port to listen on (0: a free one, printed)")
    sv.add_argument("--max-sessions", type=count, default=64, help="OpenEnv sessions at once")
    sv.add_argument("--batch-window-ms", type=float, default=20.0,
                    help="how long a batch waits after its first step for the other sessions' steps")
    sv.add_argument("--seed", type=int, default=0, help="the server's own draws (information items, table samples)")
    sv.add_argument("--max-calls", type=cap, default=0,
                    help="the most new Receiver calls the server may make; past it steps fail (0: no cap)")
    add_run_flags(sv)
    sv.set_defaults(run=_serve)
    return sv
