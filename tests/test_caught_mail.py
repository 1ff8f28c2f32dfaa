"""Development's Caught e-mail: the local catcher (tools/mail_catcher.py, a real SMTP server) keeps what the
worker sends, and the console shows it with its links; production refuses it."""

import re

import pytest

from app import create_app
from config import ConfigError
from services import settings
from tests.mail import free_port
from tests.support import make_config
from tests.webtools import page_text, run_worker
from tools.mail_catcher import catcher


@pytest.fixture
def kept(app, admin_id, tmp_path):
    """A catcher on a free port, the app's e-mail pointed at it and its folder on the Caught e-mail page."""
    folder, port = tmp_path / "caught", free_port()
    server = catcher(folder, port)
    server.start()
    app.config["CAUGHT_MAIL_DIR"] = str(folder)
    with app.app_context():
        settings.save({"public_base_url": "https://activate.example.test",
                       "mail": {"mode": "smtp", "host": "127.0.0.1", "port": port, "starttls": False,
                                "username": "", "sender": "provisio@example.test"}}, actor="test")
    yield folder
    server.stop()


def test_a_link_sent_by_e_mail_is_caught_and_opens_from_the_console(app, csr, make_account, kept):
    account_id = make_account(wizard=True, email="anna@example.com", owner="Anna Meier")
    page = csr.get(f"/accounts/{account_id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', page).group(1)
    csr.post(f"/accounts/{account_id}/send", {"kind": "link", "channel": "email", "idempotency_key": key})

    run_worker(app)

    assert len(list(kept.glob("*.eml"))) == 1
    listing = page_text(csr.get("/caught-mail"))
    assert "anna@example.com" in listing
    [link] = re.findall(r'href="(https://activate\.example\.test/m/[^"]+)"', listing)
    landing = app.test_client().get(link.removeprefix("https://activate.example.test"))
    assert landing.status_code == 200
    assert 'href="/caught-mail"' in csr.get("/").get_data(as_text=True)


def test_without_a_catcher_there_is_no_caught_e_mail_page(app, csr):
    assert csr.get("/caught-mail").status_code == 404
    assert 'href="/caught-mail"' not in csr.get("/").get_data(as_text=True)


def test_production_refuses_to_keep_e_mail_in_a_folder(database_url, tmp_path):
    with pytest.raises(ConfigError, match="CAUGHT_MAIL_DIR"):
        create_app({**make_config(database_url), "PROVISIO_ENV": "production",
                    "CAUGHT_MAIL_DIR": str(tmp_path)})
