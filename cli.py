"""Thin command-line commands; the work happens in services."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

import services.imports  # noqa: F401  (registers the job handler of CSV imports)
from extensions import db
from models import Role
from services import demo, jobs, messaging, registrar, staff, throttle
from services.errors import ServiceError

# Rate counters (services.throttle) whose window started a day ago are dead: an idle worker deletes them
# every ten minutes, so the table holds about a day of distinct callers.
PRUNE_COUNTERS_AFTER = 24 * 3600
PRUNE_EVERY = 600


def init_app(app: Flask) -> None:
    """Register the commands on `flask`."""
    for command in (setup, create_admin, reset_totp, seed_demo, worker, registrar_init, registrar_sync,
                    registrar_run):
        app.cli.add_command(command)


@click.command("setup")
@with_appcontext
def setup() -> None:
    """Migrate the database and the SIP server's, and create the first administrator (password shown once)."""
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
    try:
        staff.create(username=username, password=password, role=Role.ADMIN, actor="cli")
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Administrator {username} created.")


@click.command("reset-totp")
@with_appcontext
@click.argument("username")
def reset_totp(username: str) -> None:
    """Forget a staff user's authenticator app (a lost phone); they set up a new one at their next sign-in."""
    user = staff.find(username)
    if user is None:
        raise click.ClickException(f"No staff user {username}.")
    staff.reset_totp(user, actor="cli")
    click.echo(f"Two-factor sign-in of {username} reset; their sessions were signed out.")


@click.command("seed-demo")
@with_appcontext
@click.option("--accounts", default=300, show_default=True, help="How many accounts to create.")
def seed_demo(accounts: int) -> None:
    """Fill the database with demo groups, profiles, staff and accounts in every status."""
    summary = demo.seed(accounts)
    click.echo(summary)


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="Deliver every message that is due, then exit.")
@click.option("--idle", default=1.0, show_default=True, help="Seconds to wait when nothing is due.")
@click.option("--threads", default=4, show_default=True, help="Messages sent at the same time.")
def worker(once: bool, idle: float, threads: int) -> None:
    """Deliver queued messages (the outbox) and run background jobs; run it beside the web server."""
    click.echo("Outbox worker started." if not once else "Delivering due messages.")
    app = current_app._get_current_object()
    # Gateways answer slowly; several senders keep them busy. Each claims its own message.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        handled = sum(future.result() for future in [pool.submit(_deliver_loop, app, once, idle)
                                                     for _ in range(threads)])
    click.echo(f"Handled {handled} {'task' if handled == 1 else 'tasks'} (messages and jobs).")


def _deliver_loop(app: Flask, once: bool, idle: float) -> int:
    """Claim and send messages until none is due (with --once); return how many were handled."""
    handled, next_prune = 0, 0.0
    with app.app_context():
        while True:
            try:
                delivered = messaging.run_once() or jobs.run_next()
            except Exception:  # a broken message or a database hiccup must not stop the worker
                app.logger.exception("outbox delivery failed; the message's lease lets it be retried")
                delivered = False
            db.session.remove()  # a fresh session per message: nothing stale between deliveries
            handled += delivered
            if not delivered:
                if time.monotonic() >= next_prune:  # while idle: rate counters of long-ended windows go
                    throttle.prune(older_than_seconds=PRUNE_COUNTERS_AFTER)
                    next_prune = time.monotonic() + PRUNE_EVERY
                if once:
                    return handled
                time.sleep(idle)


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
    registrar.sync()
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
