"""Account list and search latency at 100,000 accounts divided by the same at 10,000 (target <= 1.5 each).

Each size gets its own scratch SQLite database, filled with a raw bulk insert, and is queried through the
real page (`GET /accounts?q=…`, signed in as an admin, Flask test client): the median of REPEAT requests
after a warm-up. Prints `ratio list_100k_vs_10k`, `term_100k_vs_10k`, `wildcard_100k_vs_10k`,
`boolean_100k_vs_10k`, `owner_word_100k_vs_10k`, `bare_word_100k_vs_10k` and `description_phrase_100k_vs_10k`.
"""

import os
import random
import re
import statistics
import sys
import time
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import ratio, scratch_env, sized  # noqa: E402

SIZES = sized((10_000, 100_000), (300, 1_000))
REPEAT = sized(40, 3)
OWNERS = ("Anna", "Bruno", "Carla", "David", "Elena", "Franz", "Gina", "Hugo", "Ines", "Jonas")
SURNAMES = ("Meier", "Müller", "Keller", "Weber", "Huber", "Schmid", "Frei", "Baumann", "Graf", "Roth")
PLACES = ("Front", "Back", "Sales", "Support", "Lobby", "Hall", "Office", "Store", "Garage", "Kitchen")
SHIFTS = ("day", "night", "early", "late", "weekend")
PASSWORD = "load test passphrase 2026"
# Ten accounts at each size (among the first 10,000) carry the rare words the word searches look for.
RARE = range(7, 10_000, 1_000)


def queries(size: int) -> dict[str, str]:
    """The same searches at each size; all but the list and the boolean name accounts that exist at both."""
    return {
        "list": "",
        "term": "username:80005000",                    # one account, by its whole username
        "wildcard": "callerid:+4179000123*",            # a prefix: about ten accounts at each size
        "boolean": "(status:activated OR status:connected) AND NOT enabled:false",
        "owner_word": "owner:zumstein",                 # a rare word among common ones: the RARE accounts
        "bare_word": "xaver",                           # the same accounts, by a word in any field
        "description_phrase": 'description:"backup desk"',  # a rare word, then one every account has
    }


def owner(i: int, rng: random.Random) -> str:
    """A first name and a surname out of ten each; the RARE accounts' owner is a name no other has."""
    return "Xaver Zumstein" if i in RARE else f"{rng.choice(OWNERS)} {rng.choice(SURNAMES)}"


def description(i: int, rng: random.Random) -> str:
    """Where the phone stands and its shift; the RARE accounts stand at the backup desk."""
    place = "Backup" if i in RARE else rng.choice(PLACES)
    return f"{place} desk, {rng.choice(SHIFTS)} shift"


def build(size: int):
    """A scratch database with `size` accounts in 10 groups and an admin; return the app."""
    env = scratch_env()
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app import create_app
    from extensions import db, vault
    from models import Account, Group, Profile, Role, Status
    from services import search, staff

    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"],
                      "ENCRYPTION_KEYS": [env["PROVISIO_ENCRYPTION_KEYS"]], "SESSION_COOKIE_SECURE": False,
                      "PASSWORD_HASH_PROFILE": "CHEAPEST",
                      "TOTP_REQUIRED_ROLES": []})  # the searcher signs in with a password alone
    rng = random.Random(size)
    with app.app_context():
        upgrade()
        profile = Profile(name="Bench", sip_host="sip.example.net", provisioning_host="prov.example.net")
        groups = [Group(name=f"Group {n}", profile=profile) for n in range(10)]
        db.session.add_all(groups)
        db.session.commit()
        staff.create(username="searcher", password=PASSWORD, role=Role.ADMIN, actor="bench")
        password = vault.encrypt("bench-sip-password-1234567")
        statuses = list(Status)
        rows = [{"id": i + 1, "username": f"8{i:07d}", "callerid": f"+4179{i:07d}",
                 "password_encrypted": password, "owner": owner(i, rng), "email": f"user{i}@example.com",
                 "description": description(i, rng), "group_id": groups[i % 10].id,
                 "status": rng.choice(statuses), "enabled": rng.random() < 0.8,
                 "uid": f"00000000-0000-4000-8000-{i:012d}"}
                for i in range(size)]
        for start in range(0, size, 10_000):
            db.session.execute(insert(Account), rows[start:start + 10_000])
            search.index_words((row["id"], row) for row in rows[start:start + 10_000])
        db.session.commit()
    return app


def latency(app, query: str) -> float:
    """Median seconds for the account list page with this search."""
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/auth/login", data={"username": "searcher", "password": PASSWORD, "csrf_token": token})
    url = "/accounts?" + urlencode({"q": query})
    for _ in range(5):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    results: dict[int, dict[str, float]] = {}
    for size in SIZES:
        app = build(size)
        results[size] = {name: latency(app, query) for name, query in queries(size).items()}
        print(f"{size:,} accounts: " + ", ".join(f"{name} {seconds * 1000:.1f} ms"
                                                 for name, seconds in results[size].items()), flush=True)
    small, large = SIZES
    for name in results[small]:
        ratio(f"{name}_100k_vs_10k", results[large][name] / results[small][name])


if __name__ == "__main__":
    main()
