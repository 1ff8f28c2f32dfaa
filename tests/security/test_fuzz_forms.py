"""Throw generated values at every staff page's forms and query parameters, as an admin, a CSR and a viewer:
nothing may answer 5xx.

Routes come from app.url_map and fields from the forms and links of the pages themselves, so a new page or
form is covered without editing this file. Each route gets a bounded number of examples; CI derandomises
them (the "ci" profile of tests/conftest.py).
"""

import io
import os
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from extensions import db
from models import Account, Channel, Group, Job, Message, MessageKind, Profile, Role, StaffUser
from services import bulk, idempotency, messaging, staff
from tests.security.html_forms import forms
from tests.support import Client

STAFF_BLUEPRINTS = ("console", "imports", "admin", "auth")  # auth last: its forms may sign the client out
SKIP = {"auth.logout"}  # takes no input, and would end the session the other routes are fuzzed in
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=20 explores further, locally
EXAMPLES = {Role.ADMIN: 6 * SCALE, Role.CSR: 3 * SCALE, Role.VIEWER: 2 * SCALE}
HREF = "href"
LARGEST_ID = 2**31 - 1  # PostgreSQL's INTEGER, the ids' type

# Values people and scripts send: long, NUL, unicode, numbers past every integer type, markup, JSON, dates.
tricky = st.sampled_from([
    "", " ", "\x00", "a\x00b", "0", "-1", "1", "2147483648", "9223372036854775808", "99999999999999999999",
    "-99999999999999999999", "1e999", "NaN", "ünï€ode", "😀" * 50, "x" * 5_000,
    "[]", "{}", '{"a": ' * 200,
    "{{ 7 * 7 }}", "' OR 1=1 --", "<script>alert(1)</script>", "2026-02-30", "9999-12-31T23:59:59", "true",
    "../../etc/passwd", "%00", "a" * 300 + " " + "b " * 200,
])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)  # no lone surrogates: not UTF-8
integer = st.integers(min_value=-(10**30), max_value=10**30).map(str)
scalar = st.one_of(tricky, text, integer)
value = st.one_of(scalar, st.lists(scalar, min_size=2, max_size=3))  # a list: the name sent several times


def _staff_rules(app) -> list[Rule]:
    rules = [rule for rule in app.url_map.iter_rules()
             if rule.endpoint.split(".")[0] in STAFF_BLUEPRINTS and rule.endpoint not in SKIP]
    return sorted(rules, key=lambda rule: (STAFF_BLUEPRINTS.index(rule.endpoint.split(".")[0]), rule.rule))


def _samples(app, admin_id: int, make_account) -> dict[str, list[int]]:
    """Objects for the path parameters to point at: an account with a message, a bulk job, a second
    staff user."""
    account_id = make_account()
    with app.app_context():
        actor = staff.get(admin_id)
        account = db.session.get(Account, account_id)
        messaging.queue(account, MessageKind.LINK, Channel.EMAIL, actor=actor)
        bulk.start(actor, "disable", [account_id], key=idempotency.new_value(), scope={"ids": [account_id]})
        staff.create(username="target", password="a long enough fuzz password", role=Role.CSR, group_ids=[],
                     actor="test")
        ids = {name: list(db.session.scalars(select(model.id)))
               for name, model in (("account", Account), ("message", Message), ("job", Job), ("import", Job),
                                   ("group", Group), ("profile", Profile))}
        ids["staff"] = list(db.session.scalars(select(StaffUser.id).where(StaffUser.username == "target")))
    return ids


def _path_values(rule: Rule, samples: dict[str, list[int]]) -> st.SearchStrategy[dict]:
    """Values for a rule's path parameters: existing ids (deeper pages), and ids at and past the largest."""
    parts = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            parts[name] = st.sampled_from(sorted(converter.items))
        elif isinstance(converter, IntegerConverter):
            known = samples.get(name.removesuffix("_id"), [])
            parts[name] = st.sampled_from([*known, *known, 0, 1, LARGEST_ID, LARGEST_ID + 1, 10**20])
        else:
            parts[name] = text.filter(lambda part: part and "/" not in part)
    return st.fixed_dictionaries(parts)


class Inputs:
    """Field names found on the pages, per (endpoint, method), with the values the page itself would send."""

    def __init__(self, app) -> None:
        self.adapter = app.url_map.bind("localhost")
        self.found: dict[tuple[str, str], dict[str, str]] = {}
        self.files: dict[tuple[str, str], set[str]] = {}

    def read(self, page_url: str, html: str) -> None:
        """Record the forms and the query strings of links of one page."""
        for form in forms(html):
            target = self._endpoint(form.action or page_url, form.method.upper())
            if target:
                self.found.setdefault(target, {}).update(form.names())
                self.files.setdefault(target, set()).update(f.name for f in form.fields if f.kind == "file")
        for link in _links(html):
            target = self._endpoint(link, "GET")
            if target:
                self.found.setdefault(target, {}).update(dict(parse_qsl(urlsplit(link).query)))

    def _endpoint(self, url: str, method: str) -> tuple[str, str] | None:
        try:
            endpoint, _ = self.adapter.match(urlsplit(url).path, method=method)
        except (NotFound, MethodNotAllowed):
            return None
        return endpoint, method


def _links(html: str) -> list[str]:
    links, start = [], 0
    while (start := html.find(f'{HREF}="', start)) != -1:
        end = html.find('"', start + len(HREF) + 2)
        links.append(html[start + len(HREF) + 2:end].replace("&amp;", "&"))
        start = end
    return [link for link in links if "?" in link]


def _discover(app, browser: Client, rules: list[Rule], samples: dict) -> Inputs:
    """Open every GET page once (path ids: the samples) and read its forms and links."""
    inputs = Inputs(app)
    for rule in rules:
        if "GET" not in rule.methods:
            continue
        values = {name: sorted(c.items)[0] if isinstance(c, AnyConverter) else (samples.get(
                  name.removesuffix("_id")) or [1])[0] for name, c in rule._converters.items()}
        url = inputs.adapter.build(rule.endpoint, values)
        response = browser.get(url)
        if response.mimetype == "text/html":
            inputs.read(url, response.get_data(as_text=True))
    return inputs


def _request_data(fields: dict[str, str], files: set[str]) -> st.SearchStrategy[dict]:
    """Each known field kept as the page has it, left out, or replaced by a generated value; a few
    new names."""
    choices = {name: st.one_of(st.just(default), st.none(), value)
               for name, default in fields.items()
               if name != "csrf_token" and name not in files}
    for name in files:
        uploads = st.binary(max_size=300).map(lambda body: (io.BytesIO(body), "x.csv"))
        choices[name] = st.one_of(st.none(), uploads)
    extra = st.dictionaries(st.sampled_from(["q", "before", "id", "page", "next"]), scalar, max_size=2)
    return st.tuples(st.fixed_dictionaries(choices), extra).map(
        lambda pair: {**pair[1], **{name: data for name, data in pair[0].items() if data is not None}})


def _fuzz_rule(browser: Client, rule: Rule, method: str, inputs: Inputs, samples: dict, examples: int,
               failures: list) -> None:
    fields = inputs.found.get((rule.endpoint, method), {})
    files = inputs.files.get((rule.endpoint, method), set())

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(path=_path_values(rule, samples), data=_request_data(fields, files))
    def attempt(path: dict, data: dict) -> None:
        url = inputs.adapter.build(rule.endpoint, path, force_external=False)
        response = browser.get(url, query_string=data) if method == "GET" else browser.post(url, data)
        assert response.status_code < 500, f"{method} {url} {data!r} answered {response.status_code}"

    try:
        attempt()
    except AssertionError as exc:
        failures.append(str(exc).splitlines()[0][:500])


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CSR, Role.VIEWER], ids=lambda role: role.value)
def test_no_staff_form_or_query_parameter_answers_5xx(app, admin_id, group, make_account, role):
    samples = _samples(app, admin_id, make_account)
    username = {Role.ADMIN: "alice", Role.CSR: "fuzz-csr", Role.VIEWER: "fuzz-viewer"}[role]
    if role is not Role.ADMIN:
        with app.app_context():
            staff.create(username=username, password="correct horse battery staple", role=role,
                         group_ids=[group], actor="test")
    rules = _staff_rules(app)
    admin = Client(app)
    admin.login("alice")
    inputs = _discover(app, admin, rules, samples)
    browser = Client(app)
    failures: list[str] = []
    for rule in rules:
        for method in sorted(rule.methods & {"GET", "POST"}):
            if browser.get("/").status_code != 200:  # a fuzzed form signed the client out: sign in again
                browser.login(username)
            _fuzz_rule(browser, rule, method, inputs, samples, EXAMPLES[role], failures)
    assert not failures, "\n".join(failures)
