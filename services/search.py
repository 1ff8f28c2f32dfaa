"""Account search in Apache Lucene query syntax: parsed by luqum, translated to SQLAlchemy expressions.

Field rules (the console's help panel says the same):
- `owner`, `description`: a term or phrase matches anywhere in the text (`owner:meier` finds "Anna Meier").
- `username`, `callerid`, `email`: a term matches the whole value (`username:48213377`); a callerid term
  without its + matches too. Wildcards (`*` any run, `?` one character) match whole values
  (`callerid:+4179*`, `email:*@acme.ch`).
- A bare term searches all five. `status:`, `type:`, `enabled:`, `group:` take their values (wildcards
  allowed); `created:` and `changed:` (last status change) take dates, ranges and `>`/`<`.
- AND, OR, NOT, `+`, `-` and grouping as in Lucene; terms side by side are OR unless one carries `+`.
Everything is case-insensitive; `%`, `_`, quotes and backslashes are plain characters.
"""

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time, timedelta
from fnmatch import fnmatchcase

from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser
from sqlalchemy import ColumnElement, and_, func, not_, or_, select, true

from extensions import db
from models import Account, AccountType, Group, Status
from models.account import fold
from services.errors import Invalid

MAX_LENGTH = 512
MAX_DEPTH = 16
# A bare term becomes up to six comparisons (five fields, a callerid with its +) in one chain of ORs; SQLite
# refuses an expression tree deeper than 1000 ("Expression tree is too large"): 64 terms stay well below that.
MAX_TERMS = 64
TEXT_FIELDS = {"owner": Account.owner, "description": Account.description}
# Whole-value fields are matched on their folded copies (indexed plain columns, already lower case).
KEYWORD_FIELDS = {"username": Account.username_folded, "callerid": Account.callerid_folded,
                  "email": Account.email_folded}
DEFAULT_FIELDS = ("owner", "username", "callerid", "email", "description")
DATE_FIELDS = {"created": Account.created_at, "changed": Account.status_changed_at}
CHOICE_FIELDS = {"status": [status.value for status in Status], "type": [kind.value for kind in AccountType],
                 "enabled": ["true", "false", "yes", "no"]}
FIELDS = sorted([*DEFAULT_FIELDS, *DATE_FIELDS, *CHOICE_FIELDS, "group"])
_parse_lock = threading.Lock()  # luqum's PLY parser keeps state between calls: one at a time
_STAR, _ONE = object(), object()  # wildcard tokens in a pattern


class QueryError(Invalid):
    """The query cannot be run; the message says why in words a CSR understands."""


def condition(query: str) -> ColumnElement[bool]:
    """Translate a Lucene query into one SQLAlchemy condition on Account; raise QueryError if it is wrong."""
    query = query.strip()
    if len(query) > MAX_LENGTH:
        raise QueryError(f"The search is {len(query)} characters long; at most {MAX_LENGTH} are allowed.")
    if not query:
        return true()
    if "\x00" in query:
        raise QueryError("The search contains a NUL character; remove it.")
    try:
        with _parse_lock:
            node = parser.parse(query)
    except RecursionError:
        raise QueryError(f"The search nests too deeply; at most {MAX_DEPTH} levels are allowed.") from None
    except (ParseError, IllegalCharacterError, ValueError, TypeError) as exc:
        raise QueryError(f"The search could not be read: {_reason(exc)}. Check quotes, brackets and "
                         "AND/OR/NOT, or put the text in quotes.") from None
    if (depth := _depth(node)) > MAX_DEPTH:
        raise QueryError(f"The search nests {depth} levels deep; at most {MAX_DEPTH} are allowed.")
    if (terms := _terms(node)) > MAX_TERMS:
        raise QueryError(f"The search has {terms} terms; at most {MAX_TERMS} are allowed. "
                         "Search for fewer words, or narrow it with a field such as status: or group:.")
    return _Translator().visit(node, None)


class _Translator:
    def visit(self, node: tree.Item, field: str | None) -> ColumnElement[bool]:
        method: Callable | None = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise QueryError(f"{_syntax_name(node)} is not supported in this search.")
        return method(node, field)

    # -- structure ---------------------------------------------------------------------------
    def _SearchField(self, node: tree.SearchField, field: str | None) -> ColumnElement[bool]:
        name = node.name.lower()
        if field is not None:
            raise QueryError(f"'{node.name}:' cannot be used inside '{field}:'.")
        if name not in FIELDS:
            raise QueryError(f"Unknown field '{node.name}'. Fields: {', '.join(FIELDS)}.")
        return self.visit(node.expr, name)

    def _Group(self, node, field):
        return self.visit(node.expr, field)

    _FieldGroup = _Group
    _Boost = _Group  # a boost orders Lucene's results; here every match counts the same

    def _AndOperation(self, node, field):
        return and_(*(self._clause(child, field) for child in node.children))

    def _OrOperation(self, node, field):
        return or_(*(self._clause(child, field) for child in node.children))

    def _UnknownOperation(self, node, field):
        """Terms side by side: `+` ones must match, `-` ones must not, the others are OR'd (Lucene's default)."""
        required = [self.visit(c.a, field) for c in node.children if isinstance(c, tree.Plus)]
        # `a NOT b` means `a -b` in Lucene: NOT prohibits, it is no optional clause.
        prohibited = [self.visit(c.a, field) for c in node.children if isinstance(c, tree.Prohibit | tree.Not)]
        optional = [self.visit(c, field) for c in node.children
                    if not isinstance(c, tree.Plus | tree.Prohibit | tree.Not)]
        parts = [*required, *(not_(p) for p in prohibited)]
        if optional and not required:
            parts.append(or_(*optional))
        return and_(*parts)

    _BoolOperation = _UnknownOperation

    def _clause(self, node, field):
        if isinstance(node, tree.Prohibit):
            return not_(self.visit(node.a, field))
        if isinstance(node, tree.Plus):
            return self.visit(node.a, field)
        return self.visit(node, field)

    def _Not(self, node, field):
        return not_(self.visit(node.a, field))

    _Prohibit = _Not

    def _Plus(self, node, field):
        if field == "callerid" and isinstance(node.a, tree.Word):  # `callerid:+41…` is a number, not "must"
            return self._Word(tree.Word("+" + node.a.value), field)
        return self.visit(node.a, field)

    # -- values ------------------------------------------------------------------------------
    def _Word(self, node: tree.Word, field: str | None) -> ColumnElement[bool]:
        return self._match(_pattern(node.value, wildcards=True), field)

    def _Phrase(self, node: tree.Phrase, field: str | None) -> ColumnElement[bool]:
        return self._match(_pattern(node.value[1:-1], wildcards=False), field)

    def _Range(self, node: tree.Range, field):
        column = self._date_column(field, "Ranges")
        parts = [column.is_not(None)]  # [* TO *]: any date at all
        if not _is_star(node.low):
            parts.append(column >= _date_bound(_text(node.low), end=not node.include_low))
        if not _is_star(node.high):
            parts.append(column < _date_bound(_text(node.high), end=node.include_high))
        return and_(*parts)

    def _From(self, node, field):
        column = self._date_column(field, "'>' and '>='")
        return column >= _date_bound(_text(node.a), end=not node.include)

    def _To(self, node, field):
        column = self._date_column(field, "'<' and '<='")
        return column < _date_bound(_text(node.a), end=node.include)

    def _match(self, pattern: list, field: str | None) -> ColumnElement[bool]:
        if field is None:
            return or_(*(self._match(pattern, name) for name in DEFAULT_FIELDS))
        if field in TEXT_FIELDS:
            return _like(TEXT_FIELDS[field], [_STAR, *pattern, _STAR])
        if field in KEYWORD_FIELDS:
            column = KEYWORD_FIELDS[field]
            match = _keyword(column, pattern)
            if field == "callerid" and pattern and isinstance(pattern[0], str) and pattern[0][:1].isdigit():
                match = or_(match, _keyword(column, ["+", *pattern]))
            return match
        if field in DATE_FIELDS:
            if any(not isinstance(part, str) for part in pattern):
                raise QueryError(f"'{field}:' takes a date such as 2026-11-23, not a wildcard.")
            day, column = "".join(pattern), DATE_FIELDS[field]
            return and_(column >= _date_bound(day, end=False), column < _date_bound(day, end=True))
        if field == "group":
            names = select(Group.id).where(_like(Group.name, pattern))
            return Account.group_id.in_(names)
        return _choice(field, pattern)

    def _date_column(self, field: str | None, what: str):
        if field not in DATE_FIELDS:
            raise QueryError(f"{what} work on dates only: created:[2026-01-01 TO 2026-01-31] or changed:>2026-11-01.")
        return DATE_FIELDS[field]


# -- patterns -------------------------------------------------------------------------------------

def _pattern(text: str, *, wildcards: bool) -> list:
    """Split Lucene text into literal strings and wildcard tokens; a backslash makes the next character plain."""
    parts: list = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
        elif wildcards and char in "*?":
            parts.append(_STAR if char == "*" else _ONE)
            continue
        if parts and isinstance(parts[-1], str):
            parts[-1] += char
        else:
            parts.append(char)
    return parts


def _like_text(pattern: Iterable) -> str:
    out = []
    for part in pattern:
        if part is _STAR:
            out.append("%")
        elif part is _ONE:
            out.append("_")
        else:
            out.append(fold(part).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    return "".join(out)


def _like(column, pattern: list) -> ColumnElement[bool]:
    return func.lower(column).like(_like_text(pattern), escape="\\")


def _keyword(folded, pattern: list) -> ColumnElement[bool]:
    """Whole-value match on a folded column: equality, a prefix range (both use its index), or LIKE."""
    if all(isinstance(part, str) for part in pattern):
        return folded == fold("".join(pattern))
    if len(pattern) == 2 and isinstance(pattern[0], str) and pattern[1] is _STAR and _binary_order():
        prefix = fold(pattern[0])  # SQLite compares bytes: a range the index answers, same as LIKE 'prefix%'
        return and_(folded >= prefix, folded < prefix + "\U0010ffff")
    # PostgreSQL answers LIKE 'prefix%' from the column's text_pattern_ops index
    return folded.like(_like_text(pattern), escape="\\")


def _binary_order() -> bool:
    return db.engine.dialect.name == "sqlite"


def _choice(field: str, pattern: list) -> ColumnElement[bool]:
    glob = "".join("*" if part is _STAR else "?" if part is _ONE else _glob_escape(part.lower()) for part in pattern)
    values = [value for value in CHOICE_FIELDS[field] if fnmatchcase(value, glob)]
    if not values:
        raise QueryError(f"'{field}:' takes one of: {', '.join(CHOICE_FIELDS[field])}.")
    if field == "enabled":
        wanted = {value in ("true", "yes") for value in values}
        return true() if len(wanted) == 2 else Account.enabled.is_(wanted.pop())
    column = Account.status if field == "status" else Account.account_type
    enum = Status if field == "status" else AccountType
    return column.in_([enum(value) for value in values])


def _glob_escape(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[]" else char for char in text)


def _date_bound(text: str, *, end: bool) -> datetime:
    """The start of a date (or datetime); `end` gives the moment after it (the next day for a date)."""
    try:
        if len(text) == 10:
            start = datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment + timedelta(microseconds=1) if end else moment
    except (ValueError, OverflowError):
        raise QueryError(f"'{text}' is not a date this search can use: write 2026-11-23 or 2026-11-23T14:30.") from None


def _text(node: tree.Item) -> str:
    """A range end or bound as written, its backslash escapes undone (`10\\:00` is 10:00)."""
    if not isinstance(node, tree.Word):
        raise QueryError("A date range takes dates such as 2026-11-23, not phrases.")
    return "".join(part for part in _pattern(node.value, wildcards=False))


def _is_star(node: tree.Item) -> bool:
    return isinstance(node, tree.Word) and node.value == "*"


def _depth(node: tree.Item) -> int:
    """How deeply the query nests: brackets, NOT, + and - each add a level."""
    nested = isinstance(node, tree.BaseGroup | tree.Not | tree.Prohibit | tree.Plus)
    return nested + max((_depth(child) for child in node.children), default=0)


def _terms(node: tree.Item) -> int:
    """How many values the query compares: words, phrases, ranges and bounds (each a term)."""
    if isinstance(node, tree.Term | tree.Range | tree.From | tree.To):
        return 1
    return sum(_terms(child) for child in node.children)


def _syntax_name(node: tree.Item) -> str:
    return {"Fuzzy": "Fuzzy search (~)", "Proximity": "Proximity search (\"…\"~n)",
            "Regex": "A regular expression (/…/)"}.get(type(node).__name__, type(node).__name__)


def _reason(exc: Exception) -> str:
    text = str(exc).split(" : ", 1)[-1].strip().rstrip(".!")
    return text[:160] or "unexpected syntax"
