"""``persuasion-gym cache``: what the response cache holds, and reusing answers on purpose.

The cache never serves one Receiver identity's answers to another (see
``persuasion_gym.receivers.cache``). ``adopt`` is the deliberate exception: it copies the
answers cached under an older identity of a Receiver (earlier versions named no endpoint)
or under any identity ``list`` shows, to the Receiver a spec makes.
"""

from __future__ import annotations

import argparse
import json

from persuasion_gym.errors import ConfigError


def _open(path: str | None):
    from persuasion_gym.receivers.cache import ResponseCache, default_cache_path

    return ResponseCache(path or default_cache_path())


def _list(args: argparse.Namespace) -> int:
    cache = _open(args.cache)
    print(f"{cache.path}: {len(cache)} answers", flush=True)
    for identity, n in cache.identities():
        print(f"{n:>8}  {identity}")
    return 0


def _adopt(args: argparse.Namespace) -> int:
    from persuasion_gym.receivers import make_receiver

    cache = _open(args.cache)
    receiver = make_receiver(args.receiver, cache=cache)
    try:
        target = receiver.identity_json
        if args.source is not None:
            try:
                source = json.dumps(json.loads(args.source), sort_keys=True)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"--from {args.source!r} is not JSON ({exc}): pass an identity exactly as "
                                  "'persuasion-gym cache list' prints it") from None
        elif receiver.legacy_identity is not None:
            source = json.dumps(receiver.legacy_identity, sort_keys=True)
        else:
            raise ConfigError(f"{receiver!r} has no older identity to adopt answers from: name one with --from "
                              "(see 'persuasion-gym cache list')")
        if source == target:
            raise ConfigError("--from names this Receiver's own identity: its answers are already served to it")
        available = cache.count(source)
        if not available:
            raise ConfigError(f"the cache {cache.path} holds no answers under {source}: see 'persuasion-gym cache "
                              "list' for the identities it holds")
        copied = cache.adopt(source, target)
    finally:
        receiver.close()
    print(json.dumps({"cache": str(cache.path), "from": json.loads(source), "to": json.loads(target),
                      "adopted": copied, "already_held": available - copied}, indent=2))
    return 0


def add_cache_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``cache`` command and its ``list`` and ``adopt`` verbs."""
    cache = commands.add_parser("cache", help="list the response cache's Receivers; adopt answers deliberately",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    verbs = cache.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="every Receiver identity in the cache, with its number of answers",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    listing.set_defaults(run=_list)
    adopt = verbs.add_parser(
        "adopt", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="serve answers cached under another identity (by default the old one this Receiver had, "
             "which named no endpoint) to the Receiver --receiver makes: only if they came from the same model")
    adopt.add_argument("--receiver", required=True, help="the Receiver spec to adopt the answers for")
    adopt.add_argument("--from", dest="source", default=None,
                       help="the identity to copy from, as 'cache list' prints it (default: the Receiver's old one)")
    adopt.set_defaults(run=_adopt)
    for parser in (listing, adopt):
        parser.add_argument("--cache", default=None,
                            help="the cache file (default: $PERSUASION_GYM_CACHE_DIR/responses.sqlite, else "
                                 "~/.cache/persuasion_gym/responses.sqlite)")
    return cache
