"""The ``gatehouse`` command line: run the whole system or one service, migrate."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from gatehouse.common.errors import ConfigurationError, GatehouseError, UnsafeForProduction
from gatehouse.common.identity import ALL_ROLES

MODES = ("all", "gateway", "authors", "realtime", "auth", "relay")
DESCRIPTION = """\
Gatehouse: an API gateway and the services behind it.

modes of `gatehouse run`:
  all       the whole system in one process (monolithic mode, what `make run` does):
            gateway :8000, authors :8001, realtime :8002, auth :8003 as four uvicorn
            servers in one event loop, with embedded defaults (SQLite, in-process
            event bus, in-memory rate limits, embedded OIDC issuer with demo users).
  gateway   the edge alone: auth, RBAC, rate limits, breakers, HTTP + WS proxy.
            Reads OIDC_ISSUER, REDIS_URL, GATEHOUSE_UPSTREAM_{AUTHORS,REALTIME,AUTH}_URL.
  authors   the authors service alone. Reads DATABASE_URL, AMQP_URL, OIDC_ISSUER.
  realtime  the WebSocket service alone. Reads AMQP_URL, OIDC_ISSUER.
  auth      the identity service alone (embedded issuer unless KEYCLOAK_URL is set).
  relay     the outbox relay alone: publishes authors' outbox to AMQP_URL.

Profiles (GATEHOUSE_PROFILE): `run all` is `embedded`, `run <service>` is
`production` unless GATEHOUSE_PROFILE=embedded says otherwise. Production refuses
to start, before anything runs, while a service keeps a default that is safe on
one machine only (each one named on a line of its own: KEYCLOAK_URL, AMQP_URL,
REDIS_URL, OIDC_ISSUER, ...). An absent URL picks the embedded default; a URL
that is present but wrong stops start-up with an error naming the variable.
Ports: GATEHOUSE_<SERVICE>_PORT.
"""


MIGRATE = """\
Apply a service's Alembic migrations to its database, one command per database:
  authors   DATABASE_URL (default: the embedded SQLite in GATEHOUSE_DATA_DIR)
  auth      GATEHOUSE_AUTH_DATABASE_URL (default: the embedded SQLite)

`gatehouse run all` (embedded) migrates by itself. In production a service never
does: run this first (a Job in Kubernetes); until then the service refuses to
start (auth, the relay) or answers /readyz with 503 and says this command.
Replicas migrating at once take turns (an advisory lock on PostgreSQL).
"""


AUTH = """\
Operate the embedded issuer (the auth service without KEYCLOAK_URL). Reads the auth
service's environment: GATEHOUSE_AUTH_DATABASE_URL, GATEHOUSE_AUTH_KEY_PASSPHRASE, ...

  rotate-keys   add a new signing key. Every replica publishes it in its JWKS within
                GATEHOUSE_AUTH_KEY_POLL_SECONDS and signs with it from --activate-in
                seconds on (default GATEHOUSE_AUTH_KEY_ACTIVATION_SECONDS); the previous
                key stays published until every token it signed has expired.
  create-user   add a user (--username, --role as often as needed), e.g. the first
                administrator of a production issuer, which has no demo identity. The
                password is read from standard input (asked twice at a terminal), never
                from the command line; the change is audited as made by cli:<login>.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the whole system or one service",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "mode",
        choices=MODES,
        help="what to run (see above)",
    )
    migrate = commands.add_parser(
        "migrate",
        help="upgrade one service's database to the newest schema",
        description=MIGRATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument("service", choices=("authors", "auth"), help="whose database")
    auth = commands.add_parser(
        "auth",
        help="operate the embedded issuer (rotate-keys)",
        description=AUTH,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    auth.add_argument(
        "action", choices=("rotate-keys", "create-user"), help="what to do (see above)"
    )
    auth.add_argument(
        "--activate-in",
        type=float,
        metavar="SECONDS",
        help="rotate-keys: seconds until the new key signs "
        "(default GATEHOUSE_AUTH_KEY_ACTIVATION_SECONDS)",
    )
    auth.add_argument("--username", help="create-user: the new user's name")
    auth.add_argument(
        "--role",
        action="append",
        default=[],
        choices=ALL_ROLES,
        help="create-user: a role to grant (repeat for more)",
    )
    return parser


def read_password() -> str:
    """The new user's password: asked twice at a terminal, else standard input's first line."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigurationError("password", "the two entries differ")
    return first


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gatehouse.cli import launcher

    try:
        if args.command == "migrate":
            launcher.migrate(args.service)
        elif args.command == "auth" and args.action == "create-user":
            if not args.username:
                print("gatehouse: create-user needs --username", file=sys.stderr)
                return 2
            launcher.create_user(args.username, args.role, read_password())
        elif args.command == "auth":
            launcher.rotate_keys(args.activate_in)
        else:
            launcher.run(args.mode)
    except UnsafeForProduction as exc:
        for problem in exc.problems:
            print(f"gatehouse: refusing to start in production: {problem}", file=sys.stderr)
        print(
            "gatehouse: (GATEHOUSE_PROFILE=embedded keeps the defaults of one machine)",
            file=sys.stderr,
        )
        return 2
    except ConfigurationError as exc:
        print(f"gatehouse: configuration error: {exc.detail}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or exc.title
            message = str(error["msg"]).removeprefix("Value error, ")
            if not message.startswith(where):
                message = f"{where}: {message}"
            print(f"gatehouse: configuration error: {message}", file=sys.stderr)
        return 2
    except GatehouseError as exc:  # e.g. create-user: the user exists already
        print(f"gatehouse: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
