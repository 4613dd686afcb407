"""``nightpipe serve``, ``nightpipe worker`` and ``nightpipe user ...``: the web app from the shell."""

from __future__ import annotations

import getpass
import os

import typer

from nightpipe.cli.common import console, state

users = typer.Typer(help="Accounts of the web app", no_args_is_help=True)
web = typer.Typer(help="Upkeep of the web app", no_args_is_help=True)


def serve(ctx: typer.Context) -> None:
    """Start the web app (and its local job workers); prints its address."""
    from nightpipe.web.serve import serve as run_server

    cli = state(ctx)
    web = cli.settings.web
    url = (
        web.base_url
        or f"http://{'localhost' if web.host in ('127.0.0.1', '0.0.0.0') else web.host}:{web.port}/"
    )
    console().print(
        f"nightpipe web app on {url} (data in {web.data_dir.resolve()}, "
        f"{web.local_workers} local worker(s)); stop with Ctrl-C",
        markup=False,
    )
    console().print("first account: `nightpipe user add NAME --admin`", markup=False)
    run_server(cli.settings, cli.config_path, cli.overrides)


def worker(
    ctx: typer.Context, once: bool = typer.Option(False, help="Run the queued jobs, then exit")
) -> None:
    """Run web jobs from the queue (on any machine that reaches the database and the data folder)."""
    from nightpipe.web.worker import WorkerState, serve_worker, work

    settings = state(ctx).settings
    if once:
        from nightpipe.web.database import open_web_database

        db = open_web_database(settings)
        loop = WorkerState()
        try:
            count = work(db, settings, loop, once=True)
        finally:
            db.dispose()
        console().print(f"{count} job(s) run, {loop.failed} failed", markup=False)
        if loop.failed:
            raise typer.Exit(code=1)
        return
    serve_worker(settings)


@users.command("add")
def user_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user name"),
    admin: bool = typer.Option(False, "--admin", help="Give the account the admin page"),
) -> None:
    """Create an account; the password is asked (or read from NIGHTPIPE_PASSWORD)."""
    from nightpipe.web.accounts import create_user
    from nightpipe.web.database import open_web_database

    password = os.environ.get("NIGHTPIPE_PASSWORD") or getpass.getpass(f"password for {name}: ")
    db = open_web_database(state(ctx).settings)
    try:
        with db.session() as session:
            create_user(session, name, password, admin=admin)
    finally:
        db.dispose()
    console().print(f"user {name} created{' (admin)' if admin else ''}", markup=False)


@users.command("list")
def user_list(ctx: typer.Context) -> None:
    """List the accounts."""
    from sqlalchemy import select

    from nightpipe.web.database import open_web_database
    from nightpipe.web.models import User

    db = open_web_database(state(ctx).settings)
    try:
        with db.session() as session:
            for user in session.scalars(select(User).order_by(User.name)):
                flags = ", ".join(
                    f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on
                )
                console().print(f"{user.name}" + (f" ({flags})" if flags else ""), markup=False)
    finally:
        db.dispose()


@users.command("disable")
def user_disable(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    enable: bool = typer.Option(False, "--enable", help="Enable it again"),
) -> None:
    """Disable (or enable) an account: its logins and tokens stop working at once."""
    from nightpipe.errors import MissingInputError
    from nightpipe.web.accounts import find_user
    from nightpipe.web.database import open_web_database

    db = open_web_database(state(ctx).settings)
    try:
        with db.session() as session:
            user = find_user(session, name)
            if user is None:
                raise MissingInputError(f"no user {name!r}", hint="`nightpipe user list` shows the accounts")
            user.disabled = not enable
    finally:
        db.dispose()
    console().print(f"user {name} {'enabled' if enable else 'disabled'}", markup=False)


@web.command("clean")
def web_clean(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; delete nothing"),
    days: float | None = typer.Option(None, "--days", min=0, help="Age limit (default: web.retention_days)"),
) -> None:
    """Delete finished jobs and unused uploads older than the retention (web.retention_days)."""
    from nightpipe.web.database import open_web_database
    from nightpipe.web.housekeeping import clean

    settings = state(ctx).settings
    limit = settings.web.retention_days if days is None else days
    db = open_web_database(settings)
    try:
        items = clean(db, settings.web.data_dir, limit, dry_run=dry_run)
    finally:
        db.dispose()
    for item in items:
        console().print(
            f"{item.user}\t{item.kind}\t{item.id}\t{item.age_days:.1f} days\t{item.size} bytes", markup=False
        )
    total = sum(item.size for item in items)
    verb = "would delete" if dry_run else "deleted"
    console().print(f"{verb} {len(items)} item(s), {total} bytes (older than {limit:g} days)", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``worker`` and ``user``."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(users, name="user")
    app.add_typer(web, name="web")
