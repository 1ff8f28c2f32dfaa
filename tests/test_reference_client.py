"""The reference client (tools/client.py) against a live server: activate, licence, heartbeat, key,
rotation."""

import threading

import pytest
from werkzeug.serving import make_server

from extensions import db
from models import Account, Status
from services import accounts, links, settings, staff
from tests.webtools import issue_link
from tools.client import Client, main


@pytest.fixture
def server(app):
    http = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{http.server_port}"
    with app.app_context():
        settings.save({"public_base_url": base}, actor="test")
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield base
    http.shutdown()
    thread.join(timeout=5)


def test_reference_client_goes_from_link_to_connected_and_picks_up_a_rotated_password(
    app, server, make_account, admin_id
):
    account_id = make_account(wizard=True)
    link = links.url_for_token(server, issue_link(app, account_id))

    client = Client()
    document = client.activate(link)
    assert client.licence().json() == {"valid": True, "expires_on": None}
    assert client.heartbeat().json()["status"] == "connected"
    assert client.upload_key().status_code == 201
    assert client.peer_key(document["account"]["username"]).status_code == 200
    assert client.refresh_config() is not None
    assert client.refresh_config() is None  # unchanged: 304

    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account.status is Status.CONNECTED and account.enabled
        accounts.rotate_password(account, actor=staff.get(admin_id))
        new_password = accounts.sip_password(account)
    assert new_password != document["account"]["password"]
    assert client.refresh_config()["account"]["password"] == new_password

    other = Client(activation={"client_api": {**document["client_api"], "credential": "x" * 43}})
    assert other.licence().status_code == 401


def test_the_reference_client_run_twice_on_a_link_says_so_in_one_line(app, server, make_account, capsys):
    link = links.url_for_token(server, issue_link(app, make_account(wizard=True)))
    assert main([link]) == 0
    capsys.readouterr()

    assert main([link]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "cannot activate: the link was used or replaced (410); links work once: ask for a new one\n"
