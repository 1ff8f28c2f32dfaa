"""The product's whole loop on a real SIP server: a wizard account, its secure link, Activate, the
activation file, and a SIP client that registers with what the file carries: the account is Connected."""

import re

from extensions import db
from models import Account, Profile, Status
from services import accounts, devices, staff
from tests.webtools import detached, issue_link, run_worker

from . import sipp

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


def test_wizard_account_activated_on_a_phone_registers_and_is_connected(app, admin_id, group, kamailio, sip):
    host, port = kamailio.server.split(":")
    with app.app_context():
        profile = Profile(name="Local SIP", sip_host=host, sip_port=int(port),
                          provisioning_host="prov.example.test", transport="udp")
        db.session.add(profile)
        db.session.commit()
        # The CSR creates an account for automatic activation: disabled until the phone activates it.
        account = accounts.create({
            "account_type": "pgsm", "username": "55501234", "callerid": "+41795550000", "group_id": group,
            "profile_id": profile.id, "security_model": "end-to-end", "obfuscation": True,
            "obfuscation_key": "9", "keepalive": False, "owner": "Anna Meier", "email": "anna@example.com",
            "description": "",
        }, wizard=True, actor=staff.get(admin_id))
        account_id, password = account.id, accounts.sip_password(account)
    assert sipp.register(*sip, "55501234", password).final() == (403, "Account not activated")

    # The end user opens the secure link on the phone and taps Activate.
    token = issue_link(app, account_id)
    phone = app.test_client()
    page = phone.get(f"/m/{token}", headers={"User-Agent": IPHONE}).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    activation = phone.post(f"/m/{token}/activate", data={"csrf_token": csrf, "platform": "ios"},
                            headers={"User-Agent": IPHONE})
    assert activation.status_code == 200
    document = activation.get_json(force=True)
    # The client registers with the username, password and SIP server of the activation file.
    sip_server = document["servers"]["sip"]
    assert (sip_server["host"], sip_server["port"], sip_server["transport"]) == (host, int(port), "udp")
    registration = sipp.register(f"{sip_server['host']}:{sip_server['port']}", sip[1],
                                 document["account"]["username"], document["account"]["password"],
                                 user_agent="Provisio-iOS/2.4.1")
    assert registration.final() == (200, "OK")

    # The app's heartbeat still reports its version, but with a SIP server it does not decide Connected.
    credential = document["client_api"]["credential"]
    heartbeat = phone.post("/api/client/v1/heartbeat", json={"app_version": "2.4.1"},
                           headers={"Authorization": f"Bearer {credential}"})
    assert heartbeat.status_code == 200
    assert detached(app, Account, account_id).status is Status.ACTIVATED

    with app.app_context():
        [client] = devices.registered_clients(staff.get(admin_id), 60)
    assert (client.account.username, client.user_agent) == ("55501234", "Provisio-iOS/2.4.1")
    assert (client.platform, client.app_version) == ("iPhone", "2.4.1")

    # The worker turns what the SIP server registered into Connected, and the console shows it.
    run_worker(app)
    assert detached(app, Account, account_id).status is Status.CONNECTED
