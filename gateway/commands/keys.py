"""``loonbrug keys``: the gateway's own keys and its partners' public keys.

The configuration names the gateway's key by fingerprint, so creating the key
and recording it go together: ``keys init -c FILE`` makes the key in
``gateway.gnupg_home``, writes its fingerprint into ``gateway.key_fingerprint``
of FILE (the rest of the file, comments included, is left as it is) and creates
the pseudonym key file if it does not exist yet. ``keys init --home DIR`` only
makes the key and prints its fingerprint, for configurations kept elsewhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from gateway import pseudonym
from gateway.cli import EXIT_OK
from gateway.config import Config, load
from gateway.errors import UsageError
from gateway.pgp import OpenPgp
from gateway.spool import write_atomically

DEFAULT_EXPIRY = "2y"
DEFAULT_UID = "Loonbrug gateway"

_GATEWAY_TABLE = re.compile(r"^\[gateway\][ \t]*(#.*)?$", re.MULTILINE)
_KEY_LINE = re.compile(r"^key_fingerprint[ \t]*=.*$", re.MULTILINE)
_NEXT_TABLE = re.compile(r"^\[", re.MULTILINE)


def register(subparsers: Any) -> None:
    """Add the ``keys`` command and its subcommands."""
    parser = subparsers.add_parser(
        "keys", help="create the gateway's keys, import partners' public keys"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    _register_init(actions)
    _register_import(actions)
    _register_export(actions)
    rotate = actions.add_parser(
        "rotate-pseudonym",
        help="add a new pseudonym key; older pseudonyms stay answerable",
    )
    rotate.add_argument("-c", "--config", type=Path, required=True, metavar="FILE")
    rotate.set_defaults(handler=_rotate_pseudonym)


def _register_init(actions: Any) -> None:
    init = actions.add_parser(
        "init",
        help="create the gateway's own OpenPGP key (and the pseudonym key)",
        description=(
            "With -c FILE: create the key in gateway.gnupg_home, write its "
            "fingerprint into FILE as gateway.key_fingerprint, and create "
            "audit.pseudonym_key if missing. With --home DIR: only create the "
            "key in DIR and print its fingerprint."
        ),
    )
    where = init.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", type=Path, metavar="FILE")
    where.add_argument("--home", type=Path, metavar="DIR", help="a GnuPG home")
    init.add_argument("--uid", default=DEFAULT_UID, help="the key's user id")
    init.add_argument(
        "--expire",
        default=DEFAULT_EXPIRY,
        help=f"0 (never), Nd, Nw, Nm, Ny or YYYY-MM-DD (default {DEFAULT_EXPIRY})",
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="make a new key even if the configuration already names a usable one",
    )
    init.set_defaults(handler=_init)


def _register_import(actions: Any) -> None:
    imports = actions.add_parser(
        "import",
        help="import a partner's public key; prints its fingerprint",
        description=(
            "Import the keys in KEYFILE into the gateway's GnuPG home and print "
            "each fingerprint, to put into the partner's signing_keys or "
            "encryption_key."
        ),
    )
    _home_options(imports)
    imports.add_argument("keyfile", type=Path, metavar="KEYFILE")
    imports.set_defaults(handler=_import)


def _register_export(actions: Any) -> None:
    export = actions.add_parser(
        "export",
        help="print the gateway's public key (armored), to hand to partners",
    )
    _home_options(export)
    export.add_argument(
        "fingerprint",
        nargs="?",
        help="the key to export (default: gateway.key_fingerprint)",
    )
    export.set_defaults(handler=_export)


def _home_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", type=Path, metavar="FILE")
    where.add_argument("--home", type=Path, metavar="DIR", help="a GnuPG home")


def _init(args: argparse.Namespace) -> int:
    if args.home is not None:
        with OpenPgp(args.home) as pgp:
            print(pgp.generate_key(args.uid, expire=args.expire))
        return EXIT_OK
    config = load(args.config)
    with OpenPgp(config.gateway.gnupg_home) as pgp:
        existing = config.gateway.key_fingerprint
        info = pgp.key_info(existing) if existing else None
        usable = info and info.has_secret and not (info.expired or info.revoked)
        if usable and not args.force:
            raise UsageError(
                f"{args.config}: already names usable key {existing} "
                "(use --force to replace it)"
            )
        fingerprint = pgp.generate_key(args.uid, expire=args.expire)
    _record_fingerprint(args.config, fingerprint)
    _ensure_pseudonym_key(config)
    print(fingerprint)
    return EXIT_OK


def _record_fingerprint(path: Path, fingerprint: str) -> None:
    """Set gateway.key_fingerprint in the file at *path*, keeping the rest."""
    text = path.read_text(encoding="utf-8")
    mode = path.stat().st_mode & 0o777
    write_atomically(path, set_key_fingerprint(text, fingerprint).encode("utf-8"))
    path.chmod(mode)
    load(path)


def set_key_fingerprint(text: str, fingerprint: str) -> str:
    """*text* (a configuration) with gateway.key_fingerprint set to *fingerprint*."""
    line = f'key_fingerprint = "{fingerprint}"'
    header = _GATEWAY_TABLE.search(text)
    if header is None:
        return f"[gateway]\n{line}\n\n{text}"
    following = _NEXT_TABLE.search(text, header.end())
    end = following.start() if following else len(text)
    table = text[header.end() : end]
    if _KEY_LINE.search(table):
        table = _KEY_LINE.sub(line, table, count=1)
    else:
        table = f"\n{line}{table}"
    return text[: header.end()] + table + text[end:]


def _ensure_pseudonym_key(config: Config) -> None:
    if not config.audit.pseudonym_key.exists():
        key_id = pseudonym.add_key(config.audit.pseudonym_key)
        print(
            f"pseudonym key {key_id} created in {config.audit.pseudonym_key}",
            file=sys.stderr,
        )


def _gnupg_home(args: argparse.Namespace) -> tuple[Path, str]:
    """The GnuPG home named on the command line, and the gateway key if known."""
    if args.home is not None:
        return Path(args.home), ""
    config = load(args.config)
    return config.gateway.gnupg_home, config.gateway.key_fingerprint


def _import(args: argparse.Namespace) -> int:
    home, _ = _gnupg_home(args)
    try:
        data = args.keyfile.read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.keyfile}: cannot be read") from exc
    with OpenPgp(home) as pgp:
        fingerprints = pgp.import_keys(data)
    for fingerprint in fingerprints:
        print(fingerprint)
    if not fingerprints:
        print(f"{args.keyfile}: no new key (a revocation or nothing)", file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    home, gateway_key = _gnupg_home(args)
    fingerprint = args.fingerprint or gateway_key
    if not fingerprint:
        raise UsageError("name the key to export")
    with OpenPgp(home) as pgp:
        sys.stdout.write(pgp.export_public(fingerprint).decode("ascii"))
    return EXIT_OK


def _rotate_pseudonym(args: argparse.Namespace) -> int:
    config = load(args.config)
    key_id = pseudonym.add_key(config.audit.pseudonym_key)
    print(f"pseudonym key {key_id} is now in use ({config.audit.pseudonym_key})")
    return EXIT_OK
