"""Account search in Lucene syntax, as a CSR types it in the account list: fields, wildcards, booleans,
dates, literal special characters, clear errors, group scoping, and a property test against a
plain-Python reference filter."""

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from extensions import db, vault
from models import Account, AccountType, Group, Status, StatusEvent
from services import accounts, imports, job_kinds, jobs, search, staff
from tests.webtools import page_text

LISTED = re.compile(r'<td><a href="/accounts/\d+">([^<]+)</a></td>')


def found(browser, query: str, **filters) -> list[str]:
    """Usernames the account list shows for a search, sorted."""
    response = browser.get("/accounts?" + urlencode({"q": query, **filters}))
    assert response.status_code == 200, page_text(response)
    return sorted(LISTED.findall(response.get_data(as_text=True)))


@pytest.fixture
def people(make_account, other_group):
    """A few accounts with the values the examples below search for."""
    make_account(username="48213377", owner="Anna Meier", email="anna@acme.ch", callerid="+41791234567",
                 description="VIP, 50% discount")
    make_account(username="48219999", owner="Jörg Müller", email="joerg@acme.ch", callerid="+41791230002",
                 description="desk_phone \"blue\" C:\\temp")
    make_account(username="51000001", owner="Meieri Bank", email="ops@bank.example", callerid="+41441230003",
                 wizard=True)
    make_account(username="snom0001", owner="Front desk", email="", callerid="+41441230004",
                 account_type="snom", mac_address="000413922D24", security_model=None, obfuscation=False,
                 obfuscation_key="",
                 group_id=other_group)


# -- what each kind of query finds ---------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("meier", ["48213377"]),                                   # a word of owner, any case (not "Meieri")
    ("meier*", ["48213377", "51000001"]),                      # a wildcard applies to one word
    ("owner:\"anna meier\"", ["48213377"]),                     # phrase
    ("MÜLLER", ["48219999"]),                                    # case-insensitive beyond ASCII
    ("username:48213377", ["48213377"]),                         # whole value
    ("username:4821", []),                                       # ... not a part of it
    ("username:4821*", ["48213377", "48219999"]),                # prefix wildcard
    ("username:482?3377", ["48213377"]),                         # one-character wildcard
    ("email:*@acme.ch", ["48213377", "48219999"]),               # suffix wildcard
    ("callerid:+41791234567", ["48213377"]),
    ("41791234567", ["48213377"]),                               # a number without its +
    ("callerid:+4144*", ["51000001", "snom0001"]),
    ("meier AND enabled:false", []),
    ("meier* AND enabled:false", ["51000001"]),
    ("meier OR müller", ["48213377", "48219999"]),
    ("meier müller", ["48213377", "48219999"]),                  # side by side: OR, as in Lucene
    ("+meier -bank", ["48213377"]),
    ("meier NOT bank", ["48213377"]),                            # NOT between terms prohibits, as -
    ("status:created NOT type:snom", ["48213377", "48219999", "51000001"]),
    ("meier AND NOT owner:bank", ["48213377"]),
    ("(meier OR müller) AND email:*@acme.ch", ["48213377", "48219999"]),
    ("type:snom", ["snom0001"]),
    ("status:created AND type:pgsm", ["48213377", "48219999", "51000001"]),
    ("status:*sent", []),
    ("group:\"group b\"", ["snom0001"]),
    ("group:group*", ["48213377", "48219999", "51000001", "snom0001"]),
    ("description:\"50%\"", ["48213377"]),                       # % is a plain character
    ("description:desk_phone", ["48219999"]),                    # so is _
    ("description:\"50_\"", ["48213377"]),                      # ... nor part of a word: the phrase is "50"
    ("description:\"\\\"blue\\\"\"", ["48219999"]),              # an escaped quote in a phrase
    ("description:C\\:\\\\temp", ["48219999"]),                  # escaped : and backslash
    ("owner:me\\*er", []),                                       # an escaped * is a plain star
    ("username:4821* AND NOT (owner:anna OR owner:jörg)", []),
    ("created:[2000-01-01 TO *]", ["48213377", "48219999", "51000001", "snom0001"]),
    ("created:<2000-01-01", []),
    ("created:[* TO *]", ["48213377", "48219999", "51000001", "snom0001"]),
    ("NOT created:[* TO *]", []),
    ("username:[1 TO 2]", []),                                   # ranges on text, in code-point order
    ("username:[4 TO 5]", ["48213377", "48219999"]),
])
def test_query_finds_exactly_what_its_syntax_says(admin, people, query, expected):
    assert found(admin, query) == expected


# -- the queries of Lucene's own query-syntax page, on its fields: title is owner, text is description ------

@pytest.fixture
def library(app, make_account):
    """Accounts whose owner and description carry the words of the examples on Lucene's syntax page."""
    for username, owner, description in (
        ("10000000", "The Right Way", "Don't go this way"),
        ("12000000", "Do it right", "Hello, Dolly! It's a test."),
        ("15000000", "Jakarta Apache", "The Jakarta Apache website"),
        ("20000000", "Apache Lucene", "Jakarta Apache hosts it, tested"),
        ("25000000", "Return of the Pink Panther", "text: tests, tester"),
        ("30000000", "Aida Carmen", ""),
        ("35000000", "Bruno Foam", "(1+1):2, the tenant's proof"),
    ):
        make_account(username=username, owner=owner, description=description, email=f"{username}@example.com")
    with app.app_context():
        for username, day in (("10000000", "2002-06-01"), ("12000000", "2003-06-01")):
            db.session.execute(update(Account).where(Account.username == username)
                               .values(created_at=datetime.fromisoformat(day).replace(tzinfo=UTC)))
        db.session.commit()


EVERYONE = ["10000000", "12000000", "15000000", "20000000", "25000000", "30000000", "35000000"]


@pytest.mark.parametrize(("query", "expected"), [
    ("test", ["12000000"]),                                      # Terms: a word, not "tests" or "tested"
    ('"hello dolly"', ["12000000"]),                             # ... a phrase: its words in a row
    ('owner:"The Right Way" AND description:go', ["10000000"]),  # Fields
    ('owner:"The Right Way" AND go', ["10000000"]),
    ("owner:Do it right", ["10000000", "12000000", "20000000"]),  # the field holds for "Do" alone
    ("te?t", ["12000000", "25000000"]),                          # Wildcard searches, within one word
    ("test*", ["12000000", "20000000", "25000000"]),
    ("te*t", ["12000000", "25000000", "35000000"]),
    ("created:[2002-01-01 TO 2003-01-01]", ["10000000"]),        # Range searches (mod_date)
    ("username:[10000000 TO 20000000]", ["10000000", "12000000", "15000000", "20000000"]),
    ("username:{10000000 TO 20000000}", ["12000000", "15000000"]),
    ("owner:{Aida TO Carmen}", ["15000000", "20000000", "35000000"]),  # apache, bruno: a word in range
    ("owner:[Aida TO Carmen]", ["15000000", "20000000", "30000000", "35000000"]),
    ("jakarta^4 apache", ["15000000", "20000000"]),              # Boosting orders; it filters nothing
    ('"jakarta apache"^4 "Apache Lucene"', ["15000000", "20000000"]),
    ('"jakarta apache" jakarta', ["15000000", "20000000"]),      # OR, the default
    ('"jakarta apache" OR jakarta', ["15000000", "20000000"]),
    ('"jakarta apache" || jakarta', ["15000000", "20000000"]),
    ('"jakarta apache" AND "Apache Lucene"', ["20000000"]),      # AND
    ('"jakarta apache" && "Apache Lucene"', ["20000000"]),
    ("+jakarta lucene", ["15000000", "20000000"]),               # + required
    ('"jakarta apache" NOT "Apache Lucene"', ["15000000"]),      # NOT
    ('"jakarta apache" !"Apache Lucene"', ["15000000"]),
    ('NOT "jakarta apache"', ["10000000", "12000000", "25000000", "30000000", "35000000"]),
    ('"jakarta apache" -"Apache Lucene"', ["15000000"]),         # - prohibited
    ("(jakarta OR apache) AND website", ["15000000"]),           # Grouping
    ('owner:(+return +"pink panther")', ["25000000"]),           # Field grouping
    ("\\(1\\+1\\)\\:2", ["35000000"]),                           # Escaping special characters
    ("!owner:apache", ["10000000", "12000000", "25000000", "30000000", "35000000"]),
    ("owner:apache && !description:website", ["20000000"]),
    ("jakarta*", ["15000000", "20000000"]),
    ("owner:*", EVERYONE),
])
def test_the_queries_of_lucenes_syntax_page_find_what_lucene_finds(admin, library, query, expected):
    assert found(admin, query) == expected


@pytest.mark.parametrize(("query", "message"), [
    ("/[mb]oat/", "A regular expression (/…/) is not supported"),  # Regular expression searches
    ("roam~", "Fuzzy search (~) is not supported"),              # Fuzzy searches
    ("roam~1", "Fuzzy search (~) is not supported"),
    ('"jakarta apache"~10', "Proximity search (\"…\"~n) is not supported"),  # Proximity searches
])
def test_the_lucene_queries_this_search_does_not_run_say_so(admin, library, query, message):
    response = admin.get("/accounts?" + urlencode({"q": query}))
    assert response.status_code == 400
    assert message in html.unescape(page_text(response))


def test_owner_words_are_words_in_any_case(admin, make_account):
    make_account(username="john", owner="John Smith")
    make_account(username="johnny", owner="Johnny Walker")
    make_account(username="joerg", owner="JÖRG o'Brien-Müller")
    assert found(admin, "owner:john") == ["john"]
    assert found(admin, "owner:Jo*") == ["john", "johnny"]
    assert found(admin, "owner:jö*") == ["joerg"]
    assert found(admin, "owner:J?hn") == ["john"]
    assert found(admin, "owner:\"smith john\"") == []
    assert found(admin, "owner:\"JOHN smith\"") == ["john"]
    assert found(admin, "owner:jörg") == ["joerg"]
    assert found(admin, "owner:müller owner:brien") == ["joerg"]
    assert found(admin, "owner:\"o brien müller\"") == ["joerg"]


def test_an_edit_keeps_the_words_in_step(app, admin, make_account):
    account_id = make_account(username="edited", owner="Old Name", description="first words")
    with app.app_context():
        account = db.session.get(Account, account_id)
        account.owner, account.description = "New Name", "second words"
        db.session.commit()
    assert found(admin, "owner:old") == []
    assert found(admin, "owner:new AND owner:name AND description:\"second words\"") == ["edited"]
    assert found(admin, "description:first") == []


def test_accounts_the_csv_import_writes_are_found_by_their_words(app, admin, admin_id, group):
    data = (b"callerid,owner,email,description\r\n"
            b"+41791234501,Anna Meier-Huber,anna@example.com,Sales desk\r\n"
            b"+41791234502,Bruno Keller,bruno@example.com,\r\n")
    with app.app_context():
        job = imports.start(data, filename="words.csv", default_group_id=group, actor=staff.get(admin_id))
        job_id = job.id
        db.session.remove()
        assert jobs.run_next(job_kinds.HANDLERS)
        db.session.remove()
        actor = staff.get(admin_id)
        imports.confirm(imports.get_visible(job_id, actor), send="", actor=actor)
        db.session.remove()
        assert jobs.run_next(job_kinds.HANDLERS)
        db.session.remove()
        names = dict(db.session.execute(select(Account.callerid, Account.username)).all())
    assert found(admin, "owner:huber") == [names["+41791234501"]]
    assert found(admin, 'owner:"meier huber" AND description:"sales desk"') == [names["+41791234501"]]
    assert found(admin, "keller") == [names["+41791234502"]]


def test_whole_value_fields_match_in_any_case_beyond_ascii_whatever_wrote_the_row(app, admin, make_account):
    make_account(username="ANNI01", email="Jörg.Müller@Bücher.example")  # the ORM: the account form
    with app.app_context():  # a Core bulk insert, as the CSV import writes its rows
        db.session.execute(insert(Account.__table__), [{
            "username": "OLMANN02", "callerid": "+41791239902", "email": "ÉLODIE@Ça.example",
            "password_encrypted": vault.encrypt("Sip-password-1234"),
            "group_id": db.session.scalar(select(Group.id)),
        }])
        db.session.commit()
    assert found(admin, "username:ann*") == ["ANNI01"]
    assert found(admin, "email:jörg.müller@bücher.example") == ["ANNI01"]
    assert found(admin, "username:olmann02") == ["OLMANN02"]
    assert found(admin, "email:élodie@ç*") == ["OLMANN02"]


def test_date_ranges_on_created_and_changed_respect_inclusive_and_exclusive_ends(app, admin, make_account):
    for username, day in (("d0101", "2026-01-01"), ("d0131", "2026-01-31"), ("d0201", "2026-02-01")):
        account_id = make_account(username=username)
        moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
        with app.app_context():
            db.session.execute(update(Account).where(Account.id == account_id)
                               .values(created_at=moment, status_changed_at=moment + timedelta(days=1)))
            db.session.commit()

    assert found(admin, "created:[2026-01-01 TO 2026-01-31]") == ["d0101", "d0131"]
    assert found(admin, "created:{2026-01-01 TO 2026-01-31}") == []
    assert found(admin, "created:{2026-01-01 TO 2026-02-01]") == ["d0131", "d0201"]
    assert found(admin, "created:2026-01-31") == ["d0131"]
    assert found(admin, "created:>=2026-01-31") == ["d0131", "d0201"]
    assert found(admin, "created:>2026-01-31") == ["d0201"]
    assert found(admin, "changed:<=2026-01-02") == ["d0101"]
    assert found(admin, "changed:[2026-02-01T00:00 TO 2026-02-01T23:59]") == ["d0131"]
    assert found(admin, "created:>2026-01-31T11\\:59") == ["d0131", "d0201"]  # an escaped : in a time
    assert found(admin, "created:<2026-01-31T12\\:00") == ["d0101"]


def test_search_combines_with_the_group_and_status_filters_and_pages(app, admin, make_account, group):
    for n in range(7):
        make_account(username=f"page{n}", owner="Paged Person")
    app.config["PAGE_SIZE"] = 5
    first = admin.get("/accounts?" + urlencode({"q": "owner:paged", "group": group})).get_data(as_text=True)
    assert LISTED.findall(first) == ["page6", "page5", "page4", "page3", "page2"]
    next_url = re.search(r'href="(/accounts\?[^"]*before=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(next_url).query)["q"] == ["owner:paged"]
    assert LISTED.findall(admin.get(next_url).get_data(as_text=True)) == ["page1", "page0"]


def test_csr_never_finds_another_groups_accounts(csr, people):
    assert found(csr, "type:snom OR front") == []
    assert found(csr, "username:*") == ["48213377", "48219999", "51000001"]
    assert found(csr, "group:group*") == ["48213377", "48219999", "51000001"]


def test_a_group_nobody_has_is_named_in_the_error_and_another_csrs_group_is_no_group(admin, csr, people):
    for browser, query in ((admin, "group:nonexistent"), (csr, "group:\"group b\""), (csr, "group:*b")):
        response = browser.get("/accounts?" + urlencode({"q": query}))
        assert response.status_code == 400
        shown = query.removeprefix("group:").strip('"')
        assert f"There is no group '{shown}'" in html.unescape(page_text(response))
    assert found(admin, "group:\"group b\"") == ["snom0001"]


# -- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "message"), [
    ("owner:(meier", "could not be read"),
    ("meier AND", "could not be read"),
    ("\"unterminated", "could not be read"),
    ("colour:blue", "Unknown field 'colour'"),
    ("status:sleeping", "'status:' takes one of: created"),
    ("enabled:maybe", "'enabled:' takes one of"),
    ("created:yesterday", "'yesterday' is not a date"),
    ("meier~2", "Fuzzy search (~) is not supported"),
    ("/mei.*/", "regular expression"),
    ("x" * 513, "at most 512 are allowed"),
    ("(" * 17 + "meier" + ")" * 17, "nests 17 levels deep; at most 16"),
    ("NOT " * 17 + "meier", "nests 17 levels deep"),
    ("-" * 46 + "meier", "levels deep; at most 16"),
    ("-" * 300 + "meier", "at most 16"),
    ("mei\x00er", "NUL character"),
    ("created:9999-12-31", "is not a date this search can use"),
    ("created:>9999-12-31", "is not a date this search can use"),
    ("created:[\"2026-01-01\" TO *]", "takes dates such as 2026-11-23"),
])
def test_a_wrong_query_gets_a_clear_message_in_the_page_and_a_400(admin, people, query, message):
    response = admin.get("/accounts?" + urlencode({"q": query}))

    assert response.status_code == 400
    text = html.unescape(page_text(response))
    assert message in text
    assert "Search syntax" in text  # the help panel is open beside the message
    assert not LISTED.findall(response.get_data(as_text=True))


def test_sixteen_levels_of_brackets_are_still_fine(admin, people):
    assert found(admin, "(" * 16 + "username:48213377" + ")" * 16) == ["48213377"]


def test_the_help_panel_shows_the_syntax_with_examples(admin):
    text = html.unescape(page_text(admin.get("/accounts")))
    for example in ("owner:\"anna meier\"", "username:4821*", "status:activated AND type:pgsm",
                    "created:[2026-01-01 TO 2026-01-31]", "+group:acme -status:connected", "owner:mei*",
                    "username:[10000000 TO 20000000]", "&&", "||", "not “Meierhans”"):
        assert example in text


# -- property: the database answers what a plain-Python filter answers -----------------------------

CHARS = "abcAB19 %_\\'\"*?:-üÄé"
TEXT_FIELDS, KEYWORD_FIELDS = ("owner", "description"), ("username", "callerid", "email")
GROUPS = ("Group A", "Group B")
STOP = {"and", "or", "not", "to"}
SPECIAL = set('+-&|!(){}[]^"~*?:\\/ \'')  # luqum refuses a term starting with ' unless escaped


def lucene_escape(text: str) -> str:
    return "".join("\\" + char if char in SPECIAL else char for char in text)


def analysed(text: str) -> list[str]:
    """Lucene's StandardAnalyzer on this alphabet: the lower-case runs of letters and digits."""
    return re.findall(r"[^\W_]+", text.lower())


class Term:
    """A term or phrase, maybe with wildcards, on a field or on the five default fields."""

    def __init__(self, field: str | None, parts: list[str], phrase: bool):
        self.field, self.parts, self.phrase = field, parts, phrase  # parts: text, "*" or "?"

    def lucene(self) -> str:
        if self.phrase:
            body = '"' + "".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in self.parts) + '"'
        else:
            body = "".join(p if p in ("*", "?") else lucene_escape(p) for p in self.parts)
        return f"{self.field}:{body}" if self.field else body

    def regex(self) -> str:
        if self.phrase:
            return re.escape("".join(self.parts).lower())
        return "".join(".*" if p == "*" else "." if p == "?" else re.escape(p.lower()) for p in self.parts)

    def matches(self, row: dict) -> bool:
        fields = [self.field] if self.field else [*TEXT_FIELDS, *KEYWORD_FIELDS]
        return any(self.match_field(name, row) for name in fields)

    def match_field(self, name: str, row: dict) -> bool:
        value, pattern = row[name].lower(), self.regex()
        if name == "group":
            return re.fullmatch(pattern, row["group"].lower(), re.S) is not None
        if name in TEXT_FIELDS:
            row_words = analysed(value)
            if not self.phrase and any(p in ("*", "?") for p in self.parts):  # a wildcard: one word
                return any(re.fullmatch(pattern, word, re.S) for word in row_words)
            wanted = analysed("".join(self.parts))  # a term or phrase: its words, in a row
            return bool(wanted) and any(row_words[i:i + len(wanted)] == wanted for i in range(len(row_words)))
        whole = re.fullmatch(pattern, value, re.S) is not None
        if name == "callerid" and self.parts[0] not in ("*", "?") and self.parts[0][:1].isdigit():
            whole = whole or re.fullmatch(r"\+" + pattern, value, re.S) is not None  # a number without its +
        return whole

    def unknown_groups(self, names) -> bool:
        """A group term that names none of these groups: the search refuses it."""
        return self.field == "group" and not any(re.fullmatch(self.regex(), n.lower(), re.S) for n in names)


class Range:
    """`[low TO high]`, `{…}` or a mix; None is an open end (`*`): code-point order on folded text."""

    def __init__(self, field: str | None, low: str | None, high: str | None, include_low: bool,
                 include_high: bool):
        self.field, self.low, self.high = field, low, high
        self.include_low, self.include_high = include_low, include_high

    def lucene(self) -> str:
        ends = ("[" if self.include_low else "{", "]" if self.include_high else "}")
        low, high = (lucene_escape(end) if end is not None else "*" for end in (self.low, self.high))
        body = f"{ends[0]}{low} TO {high}{ends[1]}"
        return f"{self.field}:{body}" if self.field else body

    def holds(self, value: str) -> bool:
        low, high = (end.lower() if end is not None else None for end in (self.low, self.high))
        above = low is None or (value >= low if self.include_low else value > low)
        below = high is None or (value <= high if self.include_high else value < high)
        return above and below

    def matches(self, row: dict) -> bool:
        fields = [self.field] if self.field else [*TEXT_FIELDS, *KEYWORD_FIELDS]
        return any(any(self.holds(word) for word in analysed(row[name])) if name in TEXT_FIELDS
                   else self.holds(row[name].lower()) for name in fields)

    def unknown_groups(self, names) -> bool:
        return False


class Choice:
    def __init__(self, field: str, value: str):
        self.field, self.value = field, value

    def lucene(self) -> str:
        return f"{self.field}:{self.value}"

    def matches(self, row: dict) -> bool:
        return row[self.field] == self.value

    def unknown_groups(self, names) -> bool:
        return False


class Op:
    """AND, OR, NOT (each in either of Lucene's spellings) or terms side by side with their signs."""

    SPELLINGS = {"AND": ("AND", "&&"), "OR": ("OR", "||"), "NOT": ("NOT ", "!")}

    def __init__(self, kind: str, children: list, symbol: bool = False):
        self.kind, self.children, self.symbol = kind, children, symbol

    def lucene(self) -> str:
        if self.kind == "NOT":
            return f"{self.SPELLINGS['NOT'][self.symbol]}({self.children[0].lucene()})"
        if self.kind == "implicit":  # children are (sign, node)
            return " ".join(f"{sign}({node.lucene()})" for sign, node in self.children)
        operator = self.SPELLINGS[self.kind][self.symbol]
        return f" {operator} ".join(f"({child.lucene()})" for child in self.children)

    def matches(self, row: dict) -> bool:
        if self.kind == "NOT":
            return not self.children[0].matches(row)
        if self.kind == "AND":
            return all(child.matches(row) for child in self.children)
        if self.kind == "OR":
            return any(child.matches(row) for child in self.children)
        required = [node.matches(row) for sign, node in self.children if sign == "+"]
        prohibited = [node.matches(row) for sign, node in self.children if sign in ("-", "NOT ", "!")]
        optional = [node.matches(row) for sign, node in self.children if sign == ""]
        if not all(required) or any(prohibited):
            return False
        if optional and not required:
            return any(optional)
        return True

    def unknown_groups(self, names) -> bool:
        nodes = [node for _sign, node in self.children] if self.kind == "implicit" else self.children
        return any(node.unknown_groups(names) for node in nodes)


texts = st.text(CHARS, max_size=8)
words = st.text("abcAB19üÄé_%'", min_size=1, max_size=4).filter(lambda w: w.lower() not in STOP)
parts = st.lists(st.one_of(words, st.sampled_from(["*", "?"])), min_size=1, max_size=3).filter(
    lambda ps: any(p not in ("*", "?") for p in ps))
fields = st.sampled_from([None, *TEXT_FIELDS, *KEYWORD_FIELDS, "group"])
terms = st.builds(Term, fields, parts, st.booleans())
ends = st.one_of(
    st.none(), st.text("abAB19üé+", min_size=1, max_size=3).filter(lambda w: w.lower() not in STOP))
ranges = st.builds(Range, st.sampled_from([None, *TEXT_FIELDS, *KEYWORD_FIELDS]), ends, ends, st.booleans(),
                   st.booleans())
choices = st.one_of(
    st.builds(Choice, st.just("status"), st.sampled_from([s.value for s in Status])),
    st.builds(Choice, st.just("type"), st.sampled_from([t.value for t in AccountType])),
    st.builds(Choice, st.just("enabled"), st.sampled_from(["true", "false"])),
)
signs = st.sampled_from(["", "+", "-", "NOT ", "!"])
queries = st.recursive(
    st.one_of(terms, ranges, choices),
    lambda inner: st.one_of(
        st.builds(Op, st.sampled_from(["AND", "OR"]), st.lists(inner, min_size=2, max_size=3), st.booleans()),
        st.builds(Op, st.just("NOT"), st.lists(inner, min_size=1, max_size=1), st.booleans()),
        st.builds(Op, st.just("implicit"), st.lists(st.tuples(signs, inner), min_size=2, max_size=3)),
    ),
    max_leaves=5,
)
rows = st.fixed_dictionaries({
    "owner": texts, "description": texts, "email": texts,
    "username": st.text("ab19%_Ä", min_size=1, max_size=5),
    "callerid": st.sampled_from(["+4179", "4179", "+1"]),
    "status": st.sampled_from([s.value for s in Status]),
    "type": st.sampled_from([t.value for t in AccountType]),
    "enabled": st.sampled_from(["true", "false"]), "group": st.sampled_from(GROUPS),
})


def answer(query_text: str, run) -> set[int] | str:
    """The ids a search finds, or the QueryError's message."""
    try:
        return set(run(query_text))
    except search.QueryError as exc:
        return exc.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(rows, max_size=8), query=queries)
def test_search_equals_a_plain_python_filter_and_a_csr_sees_only_their_groups(
        app, admin_id, csr_id, group, other_group, data, query):
    groups_by_name = dict(zip(GROUPS, (group, other_group), strict=True))
    with app.app_context():
        db.session.execute(delete(StatusEvent))
        db.session.execute(delete(Account))
        password = vault.encrypt("Sip-password-1234")
        stored = {}
        for n, row in enumerate(data):
            account = Account(username=f"{row['username']}#{n}", callerid=f"{row['callerid']}{n:03d}",
                              owner=row["owner"], email=row["email"], description=row["description"],
                              status=Status(row["status"]), account_type=AccountType(row["type"]),
                              enabled=row["enabled"] == "true", group_id=groups_by_name[row["group"]],
                              password_encrypted=password)
            db.session.add(account)
            db.session.flush()
            stored[account.id] = {**row, "username": account.username, "callerid": account.callerid}
        db.session.commit()

        text = query.lucene()
        admin, csr = staff.get(admin_id), staff.get(csr_id)
        got = answer(text, lambda q: db.session.scalars(select(Account.id).where(search.condition(q, admin))))
        expected = {account_id for account_id, row in stored.items() if query.matches(row)}
        if query.unknown_groups(GROUPS):
            assert "There is no group" in got, text
        else:
            assert got == expected, text

        seen = answer(text, lambda q: db.session.scalars(accounts.filtered(select(Account.id), csr,
                                                                           search=q)))
        if query.unknown_groups(GROUPS[:1]):  # Group B is no group to a CSR of Group A only
            assert "There is no group" in seen, text
        else:
            in_group_a = {account_id for account_id in expected if stored[account_id]["group"] == "Group A"}
            assert seen == in_group_a, text
        assert db.session.get(Group, group).name == "Group A"
