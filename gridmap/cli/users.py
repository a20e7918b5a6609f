"""``gridmap users …`` and ``gridmap token``: users and credentials (用户与凭据)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.common import DOMAIN_ERROR_EXIT, DbOpt, console, open_store, out

__all__ = ["token", "users_app"]

users_app = typer.Typer(help="Users and credentials (用户与凭据).", no_args_is_help=True)


def _token_config() -> Any:
    from gridmap.cli.common import cli_settings

    return cli_settings().security.token_config()


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Unique user name.")],
    role: Annotated[
        str,
        typer.Option(
            help="city_admin, town_coordinator, community_staff, "
            "grid_worker, viewer or external_system."
        ),
    ],
    area: Annotated[
        list[str] | None,
        typer.Option(
            "--area",
            help="Area code prefix (town 9, community 12, grid 15 digits); repeat for several.",
        ),
    ] = None,
    unmask: Annotated[
        bool, typer.Option("--unmask", help="May see personal data unmasked (audited).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from standard input.")
    ] = False,
    database_url: DbOpt = None,
) -> None:
    """Create a user (a password enables the OAuth2 login; `gridmap token` works without)."""
    import sys

    from gridmap.security import audit
    from gridmap.security.access import SYSTEM
    from gridmap.security.auth import add_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with open_store(database_url) as store:
        user = add_user(
            store, name, role=role, areas=area or [], password=password, can_unmask=unmask
        )
        audit.record(store, SYSTEM, "user.add", f"users:{user.name}", {"role": user.role})
    areas = ", ".join(a or "*" for a in user.areas)
    out.print(f"user {user.name} ({user.role}) areas: {areas}")


@users_app.command("list")
def users_list(database_url: DbOpt = None) -> None:
    """List users (never their secrets)."""
    from gridmap.security.auth import list_users

    with open_store(database_url, read_only=True) as store:
        users = list_users(store)
    table = Table(title="users 用户")
    for col in ("name", "role", "areas", "unmask", "password", "api key", "disabled"):
        table.add_column(col)
    for u in users:
        table.add_row(
            u.name,
            u.role,
            ", ".join(a or "*" for a in u.areas),
            "yes" if u.can_unmask else "",
            "yes" if u.password_hash else "",
            "yes" if u.api_key_hash else "",
            "DISABLED" if u.disabled else "",
        )
    out.print(table)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="User name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
    database_url: DbOpt = None,
) -> None:
    """Disable a user: their tokens and API key stop working at once."""
    from gridmap.security import audit
    from gridmap.security.access import SYSTEM
    from gridmap.security.auth import set_disabled

    with open_store(database_url) as store:
        set_disabled(store, name, not enable)
        audit.record(store, SYSTEM, "user.disable", f"users:{name}", {"disabled": not enable})
    out.print(f"user {name} {'enabled' if enable else 'disabled'}")


@users_app.command("api-key")
def users_api_key(
    name: Annotated[str, typer.Argument(help="User name (usually an external_system).")],
    database_url: DbOpt = None,
) -> None:
    """Print a new API key for NAME once (only its digest is stored); send it as X-API-Key."""
    from gridmap.security import audit
    from gridmap.security.access import SYSTEM
    from gridmap.security.auth import issue_api_key

    with open_store(database_url) as store:
        key = issue_api_key(store, name)
        audit.record(store, SYSTEM, "api_key.issue", f"users:{name}")
    print(key)


def token(
    name: Annotated[str, typer.Argument(help="User name.")],
    expires_minutes: Annotated[
        int | None, typer.Option("--expires-minutes", help="Lifetime (default from settings).")
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Print a bearer token for NAME (scripts and tests): Authorization: Bearer <token>.

    Signed with GRIDMAP_SECRET_KEY, which must be the API's.
    """
    from gridmap.security import audit
    from gridmap.security.access import SYSTEM
    from gridmap.security.auth import get_user, issue_token

    with open_store(database_url) as store:
        user = get_user(store, name)
        if user is None or user.disabled:
            console.print(f"[bold red]error:[/] no active user {name!r}")
            raise typer.Exit(DOMAIN_ERROR_EXIT)
        text = issue_token(user, _token_config(), minutes=expires_minutes)
        audit.record(store, SYSTEM, "token.issue", f"users:{name}")
    print(text)
