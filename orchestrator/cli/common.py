"""What every command module shares: core errors as one line and exit 1 (:class:`CommandGroup`, the
one handler, and :func:`fail_cleanly`), the runtime (refused on a database whose schema is not this
version's), and the options naming one person."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click

from orchestrator.config_values import hide_credentials
from orchestrator.errors import ReconsentError
from orchestrator.runtime import Runtime, runtime_from_env

P = ParamSpec("P")
R = TypeVar("R")
FC = TypeVar("FC", bound=Callable[..., object])

#: a campaign or request id as typed: a whole number the database can hold (else a usage error, exit 2,
#: instead of the database's overflow error)
ROW_ID = click.IntRange(1, 2**31 - 1)


def fail_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    """Core errors (and unreadable values such as RECONSENT_NOW) become click's one-line
    ``Error: …`` on stderr and exit code 1, never a traceback (SPEC §10)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ReconsentError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:  # e.g. RECONSENT_NOW unreadable
            raise click.ClickException(str(exc)) from None

    return wrapper


class CommandGroup(click.Group):
    """The ``reconsent`` group: whatever a command raises that a person can act on — a core error, a
    database that cannot be reached or refuses the credentials — becomes click's one-line ``Error: …``
    and exit code 1, never a traceback; no message shows a password (SPEC §10)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if hide_credentials(exc.message) == exc.message:
                raise
            raise click.ClickException(hide_credentials(exc.message)) from None
        except ReconsentError as exc:
            raise click.ClickException(hide_credentials(str(exc))) from None
        except Exception as exc:
            from orchestrator.ops.schema import database_problem

            rt = ctx.obj.get("rt") if isinstance(ctx.obj, dict) else None
            line = database_problem(exc, rt.config.database_url if rt is not None else None)
            if line is None:
                raise
            raise click.ClickException(line) from None


def get_rt(ctx: click.Context, *, need_db: bool = True) -> Runtime:
    """The runtime for this invocation, built once from --config / RECONSENT_CONFIG and the
    environment; with ``need_db``, refused unless the database schema is this version's."""
    obj = ctx.find_root().obj
    if "rt" not in obj:
        obj["rt"] = runtime_from_env(obj.get("config"))
    rt: Runtime = obj["rt"]
    if need_db:
        from orchestrator.ops.schema import schema_refusal

        problem = schema_refusal(rt)
        if problem:
            raise ReconsentError(f"database {rt.config.database_url_shown} {problem}")
    return rt


def set_rt(ctx: click.Context, rt: Runtime) -> None:
    """Use ``rt`` for the rest of this invocation (``init`` builds it from the config it wrote)."""
    ctx.find_root().obj["rt"] = rt


def explicit_config(ctx: click.Context) -> str | None:
    """The --config PATH (or RECONSENT_CONFIG) given, if any."""
    config: str | None = ctx.find_root().obj.get("config")
    return config


def service_logging(rt: Runtime) -> None:
    """Long-running commands log as configured ([logging] format and level)."""
    from orchestrator.ops.logs import configure_logging

    configure_logging(rt.config.logging.format, rt.config.logging.level, rt.config.logging.ip_addresses)


def address_options(func: FC) -> FC:
    """--email / --phone: the two ways to name one person."""
    func = click.option("--phone", help="The person's phone number.")(func)
    func = click.option("--email", help="The person's email address.")(func)
    return func


def one_address(email: str | None, phone: str | None) -> None:
    if bool(email) == bool(phone):
        raise click.UsageError("give exactly one of --email or --phone")


def operator() -> str:
    """Who runs the command, for registers (``--by`` default)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name (some containers)
        return "operator"


by_option = click.option("--by", help="Who handled the request, for the register (default: your user name).")
