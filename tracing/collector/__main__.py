"""``python -m tracing.collector``: the command line of the reference receiver."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from tracing._wire import DEFAULT_HOST, DEFAULT_PORT

from ._app import DEFAULT_MAX_BODY, is_loopback, serve
from ._storage import StoreError, is_postgres_url

DEFAULT_DB = "tracing-collector.db"
KEYS_ENV = "TRACING_COLLECTOR_KEYS"
DB_ENV = "TRACING_COLLECTOR_DB"

logger = logging.getLogger("tracing.collector")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def _key(text: str) -> str:
    """A key a request can show: not empty (an unset variable in ``--key "$KEY"`` must not
    open the collector to everyone), and not edged with the spaces or tabs HTTP removes
    around a header value (no Authorization header could then carry it)."""
    if not text:
        raise argparse.ArgumentTypeError("a key must not be empty")
    if text != text.strip(" \t"):
        raise argparse.ArgumentTypeError("a key must not begin or end with a space or tab")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracing.collector",
        description=(
            "Receive traces from the tracing SDK, store them in SQLite, and show them "
            "in a web viewer."
        ),
        epilog=(
            f"Keys may also be given comma-separated in ${KEYS_ENV} (better than --key, "
            "which other users can see in the process list). With no key, the collector "
            "accepts everyone, so it listens only on a loopback address unless "
            "--insecure-public is given."
        ),
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH_OR_URL",
        help=(
            "a SQLite file, created if missing, or a PostgreSQL URL "
            "postgresql://user:password@host:port/dbname (needs aiotracing[postgres]; several "
            f"collectors may share one); also ${DB_ENV} "
            f"(default: {DEFAULT_DB} in the current directory)"
        ),
    )
    parser.add_argument(
        "--key",
        action="append",
        type=_key,
        default=[],
        metavar="KEY",
        help="accept this key as 'Authorization: Bearer KEY' (repeatable; default: no keys)",
    )
    parser.add_argument(
        "--max-body",
        type=_positive,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=(
            "largest request body, counted as received and again after gzip decompression "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--insecure-public",
        action="store_true",
        help="allow listening on a non-loopback address with no keys (anyone can read traces)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    env_keys = [k.strip(" \t\r\n") for k in os.environ.get(KEYS_ENV, "").split(",")]
    keys = [k for k in [*args.key, *env_keys] if k]
    if not keys and not is_loopback(args.host) and not args.insecure_public:
        parser.error(
            f"refusing to listen on {args.host!r} with no keys: anyone who can reach it could "
            f"read every trace. Give --key (or ${KEYS_ENV}), or --insecure-public."
        )
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        db = args.db or os.environ.get(DB_ENV) or DEFAULT_DB
        db = db if is_postgres_url(db) else os.path.abspath(db)
        asyncio.run(serve(args.host, args.port, db, keys=keys, max_body=args.max_body))
    except StoreError as exc:
        logger.error("cannot use the database: %s", exc)
        return 1
    except OSError as exc:
        logger.error("cannot listen on %s port %s: %s", args.host, args.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
