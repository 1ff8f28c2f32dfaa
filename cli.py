"""Thin command-line commands; the work happens in services."""

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

import config
from models import Role
from services import backup, demo, registrar, staff
from services.errors import ServiceError
from services.worker import Worker


def init_app(app: Flask) -> None:
    """Register the commands on `flask`; an app still without its secrets has `setup` alone, to write them."""
    if config.missing_secrets(app):
        app.cli.add_command(setup)
        return
    for command in (setup, create_admin, reset_password, reset_totp, seed_demo, worker, backup_command,
                    restore_command, registrar_init, registrar_sync, registrar_run):
        app.cli.add_command(command)


@click.command("setup")
@with_appcontext
def setup() -> None:
    """Write the development secrets if missing, migrate both databases (the app's, the SIP
    server's), create the first administrator."""
    secrets_file = config.write_instance(current_app)
    if secrets_file:
        click.echo(f"Secrets written to {secrets_file} (readable by you only); every start reads them there.")
    upgrade()
    if registrar.configured():
        registrar.init_schema()
    password = staff.ensure_first_admin()
    if password:
        click.echo("=" * 60)
        click.echo("First administrator created. Write this down, it is shown once:")
        click.echo("  username: admin")
        click.echo(f"  password: {password}")
        click.echo("=" * 60)


@click.command("create-admin")
@with_appcontext
@click.argument("username")
@click.password_option()
def create_admin(username: str, password: str) -> None:
    """Create an administrator with a password you type."""
    with _refusals_as_errors():
        staff.create(username=username, password=password, role=Role.ADMIN, actor="cli")
    click.echo(f"Administrator {username} created.")


@click.command("reset-password")
@with_appcontext
@click.argument("username")
def reset_password(username: str) -> None:
    """Give a staff user (the first admin who lost the printed password, say) a new one, shown once."""
    user = _staff_user(username)
    password = staff.generated_password()
    staff.reset_password(user, new=password, actor="cli")
    click.echo(f"New password of {username}, shown once: {password}")
    click.echo("Their sessions were signed out; their authenticator app still applies (see reset-totp).")


@click.command("reset-totp")
@with_appcontext
@click.argument("username")
def reset_totp(username: str) -> None:
    """Forget a staff user's authenticator app (a lost phone); they set up a new one at their next sign-in."""
    user = _staff_user(username)
    staff.reset_totp(user, actor="cli")
    click.echo(f"Two-factor sign-in of {username} reset; their sessions were signed out.")


@click.command("seed-demo")
@with_appcontext
@click.option("--accounts", default=300, show_default=True, help="How many accounts to create.")
def seed_demo(accounts: int) -> None:
    """Fill the database with demo groups, profiles, staff and accounts in every status."""
    summary = demo.seed(accounts)
    click.echo(summary)


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--keep", type=click.IntRange(min=1),
              help="Keep only the newest KEEP backups in PATH (a directory).")
def backup_command(path: Path, keep: int | None) -> None:
    """Copy the database to PATH (a file, or a directory for a timestamped file) while the app runs."""
    with _refusals_as_errors():
        written = backup.backup(path, keep=keep)
    click.echo(f"Backup written to {written}.")


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True,
              help="Overwrite a database that holds data (stop the services first).")
def restore_command(path: Path, replace: bool) -> None:
    """Put a backup back; every link sent before the restore stops working (send them again)."""
    with _refusals_as_errors():
        cancelled = backup.restore(path, replace=replace)
    click.echo(f"Restored {path.name}. The links of {cancelled} accounts no longer work: send them again.")


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="Deliver every message that is due, then exit.")
@click.option("--idle", default=1.0, show_default=True, help="Seconds to wait when nothing is due.")
@click.option("--threads", default=4, show_default=True, help="Messages sent at the same time.")
def worker(once: bool, idle: float, threads: int) -> None:
    """Deliver queued messages (the outbox) and run background jobs; run it beside the web server.
    SIGTERM or Ctrl-C stops it: sends under way finish, the other messages go back to the outbox."""
    click.echo("Outbox worker started." if not once else "Delivering due messages.")
    process = Worker(current_app._get_current_object(), senders=max(1, threads), idle=idle, once=once)
    main = threading.current_thread() is threading.main_thread()  # only it may take signals
    handlers = {number: signal.signal(number, lambda *_: process.stop())
                for number in (signal.SIGTERM, signal.SIGINT) if main}
    try:
        handled = process.run()
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    click.echo(f"Handled {handled} {'task' if handled == 1 else 'tasks'} (messages and jobs).")


@contextmanager
def _refusals_as_errors():
    """A service's refusal ends the command with its message (exit status 1), never a traceback."""
    try:
        yield
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None


def _staff_user(username: str):
    user = staff.find(username)
    if user is None:
        raise click.ClickException(f"No staff user {username}.")
    return user


@click.command("registrar-init")
@with_appcontext
def registrar_init() -> None:
    """Create the SIP server's missing tables, where REGISTRAR_DATABASE_URL and REGISTRAR_LOCATION_URL say."""
    _require_registrar()
    registrar.init_schema()
    click.echo("The SIP server's tables are ready.")


@click.command("registrar-sync")
@with_appcontext
def registrar_sync() -> None:
    """Write every account to the SIP server again and remove the subscribers of deleted accounts."""
    _require_registrar()
    if not registrar.sync():
        raise click.ClickException("The SIP server's database could not be written; the log says why.")
    click.echo("The SIP server's subscribers match the accounts.")


@click.command("registrar-run")
@with_appcontext
def registrar_run() -> None:
    """Run Kamailio in the foreground on these settings, for a trial (in production: provisio-sip.service)."""
    _require_registrar()
    registrar.init_schema()
    registrar.sync()
    command = registrar.kamailio_command(current_app.instance_path)
    click.echo(f"SIP server on {current_app.config['REGISTRAR_LISTEN']} (Ctrl-C stops it).")
    os.execvpe(command[0], command, registrar.kamailio_environment(current_app.config))


def _require_registrar() -> None:
    if not registrar.configured():
        raise click.ClickException("No SIP server is configured: set REGISTRAR_DATABASE_URL and "
                                   "REGISTRAR_LOCATION_URL (docs/operations.md, \"Running the SIP server\").")
