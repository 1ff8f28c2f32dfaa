"""A reference client that plays the app: activate from a secure link, validate the licence,
heartbeat, upload a key and pick up a rotated password.

    python -m tools.client https://activate.example.com/m/<token>
"""

import argparse
import json
import sys
from dataclasses import dataclass, field

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

APP_VERSION = "reference-client/1.0"


@dataclass
class Client:
    """An installed app: its activation file and what it learned since."""

    session: requests.Session = field(default_factory=requests.Session)
    activation: dict = field(default_factory=dict)
    etag: str | None = None

    @property
    def api(self) -> str:
        return self.activation["client_api"]["base_url"]

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.activation['client_api']['credential']}"}

    def activate(self, link: str) -> dict:
        """Fetch the activation file directly, as the app does when the link opens it."""
        response = self.session.get(f"{link.rstrip('/')}/activation",
                                    headers={"X-Provisio-Client": APP_VERSION}, timeout=10)
        response.raise_for_status()
        self.activation = response.json()
        return self.activation

    def licence(self) -> requests.Response:
        return self.session.post(f"{self.api}/licence", headers=self._auth(), timeout=10)

    def heartbeat(self) -> requests.Response:
        return self.session.post(f"{self.api}/heartbeat", json={"app_version": APP_VERSION},
                                 headers=self._auth(), timeout=10)

    def upload_key(self) -> requests.Response:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return self.session.put(f"{self.api}/keys", json={"public_key": pem.decode()}, headers=self._auth(),
                                timeout=10)

    def peer_key(self, username: str) -> requests.Response:
        return self.session.get(f"{self.api}/keys/{username}", headers=self._auth(), timeout=10)

    def refresh_config(self) -> dict | None:
        """Fetch the configuration; None when it has not changed since the last fetch (304)."""
        headers = self._auth() | ({"If-None-Match": f'"{self.etag}"'} if self.etag else {})
        response = self.session.get(f"{self.api}/config", headers=headers, timeout=10)
        if response.status_code == 304:
            return None
        response.raise_for_status()
        self.etag = response.headers["ETag"].strip('"')
        self.activation["account"] = response.json()["account"]
        return response.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("link", help="the secure link from the message, https://…/m/<token>")
    args = parser.parse_args(argv)
    client = Client()
    try:
        document = client.activate(args.link)
    except requests.RequestException as exc:
        print(f"cannot activate: {_reason(exc)}", file=sys.stderr)
        return 1
    print(f"activated {document['account']['username']} ({document['account']['virtual_number']})")
    calls = (("licence", client.licence), ("heartbeat", client.heartbeat), ("key", client.upload_key))
    for step, call in calls:
        response = call()
        print(f"{step}: {response.status_code} {json.dumps(response.json())}")
    client.refresh_config()
    print("configuration fetched; run again with the same link and you get 410: links work once")
    return 0


def _reason(exc: requests.RequestException) -> str:
    """One line a person reads: the server's own answer, or what stopped the request."""
    if exc.response is None:
        return str(exc)
    if exc.response.status_code == 410:
        return "the link was used or replaced (410); links work once: ask for a new one"
    return f"the server answered {exc.response.status_code} {exc.response.reason}"


if __name__ == "__main__":
    sys.exit(main())
