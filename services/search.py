"""Account search in Apache Lucene query syntax: parsed by luqum, translated to SQLAlchemy expressions.

Field rules (the console's help panel says the same):
- `owner`, `description` are text fields, analysed as Lucene's StandardAnalyzer does: their terms are words
  (runs of letters and digits). `owner:john` finds "John Smith", not "Johnny Walker"; wildcards apply to one
  word (`owner:jo*`, `owner:j?hn`); a phrase, or a term of several words (`desk_phone`), finds them in a row.
- `username`, `callerid`, `email`: a term matches the whole value (`username:48213377`); a callerid term
  without its + matches too. Wildcards (`*` any run, `?` one character) match whole values
  (`callerid:+4179*`, `email:*@acme.ch`).
- A bare term searches all five. `status:`, `type:`, `enabled:`, `group:` take their values (wildcards
  allowed; a group the user does not serve is no group); `created:` and `changed:` (last status change)
  take dates.
- Ranges (`[a TO b]`, `{a TO b}` without the ends, `*` open, `>`, `>=`, `<`, `<=`) work on every field: in
  code-point order on text as in Lucene (on each word of owner and description), by date on dates.
- AND, OR, NOT (or `&&`, `||`, `!`), `+`, `-` and grouping as in Lucene; terms side by side are OR unless
  one carries `+`.
Everything is case-insensitive; `%` and `_` are no wildcards, and a backslash makes the next character plain.
"""

import operator
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.head_tail import TokenValue
from luqum.parser import lexer, parser, reserved
from sqlalchemy import ColumnElement, Select, and_, false, func, insert, not_, or_, select, true, union_all
from sqlalchemy.orm import aliased

from extensions import db
from models import Account, AccountTerm, AccountType, StaffUser, Status
from models.account import TEXT_FIELDS, fold, term_rows, words
from services.errors import Invalid
from services.groups import visible_groups

MAX_LENGTH = 512
MAX_DEPTH = 16
# A bare term becomes up to five comparisons and each word of a phrase one more join; SQLite refuses an
# expression tree deeper than 1000 ("Expression tree is too large") and a join of more than 64 tables.
MAX_TERMS = 64
# A phrase's words are counted up to this many accounts to find the rarest (more is common enough).
RARE = 1_000
# Whole-value fields are matched on their folded copies (indexed plain columns, already lower case).
KEYWORD_FIELDS = {"username": Account.username_folded, "callerid": Account.callerid_folded,
                  "email": Account.email_folded}
DEFAULT_FIELDS = ("owner", "username", "callerid", "email", "description")
DATE_FIELDS = {"created": Account.created_at, "changed": Account.status_changed_at}
CHOICE_FIELDS = {"status": [status.value for status in Status], "type": [kind.value for kind in AccountType],
                 "enabled": ["true", "false", "yes", "no"]}
FIELDS = sorted([*DEFAULT_FIELDS, *DATE_FIELDS, *CHOICE_FIELDS, "group"])
# Lucene's other spelling of two operators; luqum reads them as words.
OPERATOR_WORDS = {"&&": "AND_OP", "||": "OR_OP"}
_parse_lock = threading.Lock()  # luqum's PLY parser keeps state between calls: one at a time
_STAR, _ONE = object(), object()  # wildcard tokens in a pattern
_ORDER = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class QueryError(Invalid):
    """The query cannot be run; the message says why in words a CSR understands."""


def condition(query: str, user: StaffUser) -> ColumnElement[bool]:
    """Translate a Lucene query into one SQLAlchemy condition on Account, for `user` (`group:` knows the
    groups they serve, no other); raise QueryError if it is wrong."""
    query = query.strip()
    if len(query) > MAX_LENGTH:
        raise QueryError(f"The search is {len(query)} characters long; at most {MAX_LENGTH} are allowed.")
    if not query:
        return true()
    if "\x00" in query:
        raise QueryError("The search contains a NUL character; remove it.")
    try:
        with _parse_lock:
            node = parser.parse(query, lexer=lexer, tokenfunc=_lucene_tokens(lexer))
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
    return _Translator(user).visit(node, None)


def index_words(accounts: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
    """Add the words of accounts a Core insert wrote, (id, values) pairs (the CSV import's bulk insert): the
    ORM keeps them for every other write (Account._analyse)."""
    if rows := term_rows(accounts):
        db.session.execute(insert(AccountTerm.__table__), rows)


def _lucene_tokens(source) -> Callable:
    """luqum's tokens, with `&&`, `||` and `!` read as Lucene's grammar reads them: `&&` and `||` standing
    alone are AND and OR, and every `!` outside quotes is NOT (`!owner:x`, `a !b`, even `a!b`; `\\!` is a
    plain !)."""
    def token():
        item = source.token()
        if item is None or item.type != "TERM":
            return item
        text = item.value.value
        if text in OPERATOR_WORDS:
            item.type, item.value = OPERATOR_WORDS[text], _token_value(text, item.lexpos)
        elif (bang := _unescaped_bang(text)) == 0:
            item.type, item.value = "NOT", _token_value("!", item.lexpos)
            source.lexpos = item.lexpos + 1  # read on after the !, a phrase or a bracket as much as a word
        elif bang > 0:
            before = text[:bang]  # a word (or AND, OR, NOT, TO) up to the !, which is read next
            item.type = reserved.get(before, "TERM")
            item.value = tree.Word(before) if item.type == "TERM" else _token_value(before, item.lexpos)
            source.lexpos = item.lexpos + bang
        return item

    return token


def _token_value(text: str, position: int) -> TokenValue:
    value = TokenValue(text)
    value.pos, value.size = position, len(text)
    return value


def _unescaped_bang(text: str) -> int:
    escaped = False
    for index, char in enumerate(text):
        if char == "!" and not escaped:
            return index
        escaped = char == "\\" and not escaped
    return -1


class _Translator:
    def __init__(self, user: StaffUser) -> None:
        self.user = user
        self._groups: list[tuple[int, str]] | None = None

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
        """Terms side by side: `+` ones must match, `-` ones must not.

        The others are OR'd (Lucene's default).
        """
        required = [self.visit(c.a, field) for c in node.children if isinstance(c, tree.Plus)]
        # `a NOT b` means `a -b` in Lucene: NOT prohibits, it is no optional clause.
        prohibited = [self.visit(c.a, field) for c in node.children
                      if isinstance(c, tree.Prohibit | tree.Not)]
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
        return self._range(field, None if _is_star(node.low) else node.low, node.include_low,
                           None if _is_star(node.high) else node.high, node.include_high)

    def _From(self, node, field):
        return self._range(field, node.a, node.include, None, True)

    def _To(self, node, field):
        return self._range(field, None, True, node.a, node.include)

    def _match(self, pattern: list, field: str | None) -> ColumnElement[bool]:
        if field is None:
            return _anywhere(pattern)
        if field in TEXT_FIELDS:
            return _in(_word_ids((field,), pattern))
        if field in KEYWORD_FIELDS:
            return _whole_value(field, pattern)
        if field in DATE_FIELDS:
            return _day(field, pattern)
        matches = _matcher(pattern)
        if field == "group":
            if not (ids := [id_ for id_, name in self.groups() if matches(name)]):
                raise QueryError(f"There is no group '{_written(pattern)}'. A name with spaces goes in "
                                 "quotes: group:\"Group B\".")
            return Account.group_id.in_(ids)
        if not (values := [value for value in CHOICE_FIELDS[field] if matches(value)]):
            raise QueryError(f"'{field}:' takes one of: {', '.join(CHOICE_FIELDS[field])}.")
        return _choice(field, values)

    def _range(self, field: str | None, low: tree.Item | None, include_low: bool, high: tree.Item | None,
               include_high: bool) -> ColumnElement[bool]:
        """A range of values (None: an open end): by date on dates, in code-point order on everything else."""
        if field is None:
            return or_(*(self._range(name, low, include_low, high, include_high) for name in DEFAULT_FIELDS))
        if field in DATE_FIELDS:
            column = DATE_FIELDS[field]
            parts = [column.is_not(None)]  # [* TO *]: any date at all
            if low is not None:
                parts.append(column >= _date_bound(_date_text(low), end=not include_low))
            if high is not None:
                parts.append(column < _date_bound(_date_text(high), end=include_high))
            return and_(*parts)
        bounds = _Bounds(_bound_text(low), include_low, _bound_text(high), include_high)
        if field in KEYWORD_FIELDS:
            return and_(KEYWORD_FIELDS[field].is_not(None), *bounds.sql(KEYWORD_FIELDS[field]))
        if field in TEXT_FIELDS:
            return _in(_term_ids((field,), *bounds.sql(AccountTerm.term)))
        if field == "group":
            return Account.group_id.in_([id_ for id_, name in self.groups() if bounds.hold(name)])
        return _choice(field, [value for value in CHOICE_FIELDS[field] if bounds.hold(value)])

    def groups(self) -> list[tuple[int, str]]:
        """The id and folded name of every group the user serves (all of them for an admin), read once."""
        if self._groups is None:
            self._groups = [(group.id, fold(group.name)) for group in visible_groups(self.user)]
        return self._groups


# -- words ----------------------------------------------------------------------------------------

def _anywhere(pattern: list) -> ColumnElement[bool]:
    """A bare term: a word of owner or description, or a whole username, callerid or e-mail. One set of ids,
    so that PostgreSQL joins it as well as SQLite (an OR of IN (…) makes it read every account)."""
    whole = select(Account.id).where(or_(*(_whole_value(field, pattern) for field in KEYWORD_FIELDS)))
    word_ids = _word_ids(TEXT_FIELDS, pattern)
    return Account.id.in_(whole if word_ids is None else union_all(word_ids, whole))


def _word_ids(fields: tuple[str, ...], pattern: list) -> Select | None:
    """The accounts a term on analysed fields finds (None: none at all): wildcards match one word; a plain
    term is analysed into words that must follow each other (a phrase); a term without a word finds nothing,
    as in Lucene."""
    if any(not isinstance(part, str) for part in pattern):
        if not all(part is _STAR or part is _ONE or words(part) == [fold(part)] for part in pattern):
            return None  # a space or punctuation is never inside a word
        return _term_ids(fields, _keyword(AccountTerm.term, pattern))
    terms = words("".join(pattern))
    if not terms:
        return None
    # The join starts from the rarest word, as Lucene leads a conjunction with its shortest postings list:
    # the planner (SQLite has no statistics of values) keeps the first table outside.
    start = _rarest(fields, terms)
    anchor = aliased(AccountTerm)
    phrase = select(anchor.account_id).where(anchor.field.in_(fields), anchor.term == terms[start])
    for index, term in enumerate(terms):
        if index != start:
            other = aliased(AccountTerm)
            phrase = phrase.join(other, and_(other.field == anchor.field, other.term == term,
                                             other.account_id == anchor.account_id,
                                             other.position == anchor.position + (index - start)))
    return phrase


def _rarest(fields: tuple[str, ...], terms: list[str]) -> int:
    """The index of the word with the fewest postings, each counted up to RARE from the index alone."""
    if len(terms) == 1:
        return 0
    counts = {term: db.session.scalar(select(func.count()).select_from(
        select(AccountTerm.id).where(AccountTerm.field.in_(fields), AccountTerm.term == term).limit(RARE)
        .subquery())) for term in set(terms)}
    return min(range(len(terms)), key=lambda index: counts[terms[index]])


def _whole_value(field: str, pattern: list) -> ColumnElement[bool]:
    column = KEYWORD_FIELDS[field]
    match = _keyword(column, pattern)
    if field == "callerid" and pattern and isinstance(pattern[0], str) and pattern[0][:1].isdigit():
        match = or_(match, _keyword(column, ["+", *pattern]))  # a number without its +
    return match


def _term_ids(fields: tuple[str, ...], *conditions: ColumnElement[bool]) -> Select:
    return select(AccountTerm.account_id).where(AccountTerm.field.in_(fields), *conditions)


def _in(account_ids: Select | None) -> ColumnElement[bool]:
    return false() if account_ids is None else Account.id.in_(account_ids)


# -- patterns -------------------------------------------------------------------------------------

def _pattern(text: str, *, wildcards: bool) -> list:
    """Split Lucene text into literal strings and wildcard tokens.

    A backslash makes the next character plain.
    """
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


def _written(pattern: Iterable) -> str:
    return "".join("*" if part is _STAR else "?" if part is _ONE else part for part in pattern)


def _matcher(pattern: list) -> Callable[[str], bool]:
    """Whether a folded value matches the whole pattern, in Python (choices and group names)."""
    regex = re.compile("".join(".*" if part is _STAR else "." if part is _ONE else re.escape(fold(part))
                               for part in pattern), re.S)
    return lambda value: regex.fullmatch(value) is not None


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


def _keyword(folded, pattern: list) -> ColumnElement[bool]:
    """Whole-value match on a folded column: equality, a prefix range (both use its index), or LIKE."""
    if all(isinstance(part, str) for part in pattern):
        return folded == fold("".join(pattern))
    like = folded.like(_like_text(pattern), escape="\\")
    if not (isinstance(pattern[0], str) and _binary_order()):
        return like  # PostgreSQL answers LIKE 'prefix…' from the column's text_pattern_ops index
    # SQLite compares bytes: the literal prefix is a range its index answers (and all of LIKE 'prefix%')
    prefix = fold(pattern[0])
    in_prefix = and_(folded >= prefix, folded < prefix + "\U0010ffff")
    return in_prefix if pattern[1:] == [_STAR] else and_(in_prefix, like)


def _binary_order() -> bool:
    return db.engine.dialect.name == "sqlite"


class _Bounds:
    """The folded ends of a range (None: open), compared in code-point order, as Lucene orders terms."""

    def __init__(self, low: str | None, include_low: bool, high: str | None, include_high: bool) -> None:
        ends = ((">=" if include_low else ">", low), ("<=" if include_high else "<", high))
        self.ends = [(op, value) for op, value in ends if value is not None]

    def sql(self, column) -> list[ColumnElement[bool]]:
        # SQLite compares bytes, which is code-point order in UTF-8; PostgreSQL's pattern operators
        # (~>=~ …) compare so whatever the collation, and its text_pattern_ops indexes answer them.
        return [column.op(op if _binary_order() else f"~{op}~", is_comparison=True)(value)
                for op, value in self.ends]

    def hold(self, value: str) -> bool:
        return all(_ORDER[op](value, end) for op, end in self.ends)


def _choice(field: str, values: list[str]) -> ColumnElement[bool]:
    if field == "enabled":
        wanted = {value in ("true", "yes") for value in values}
        return true() if len(wanted) == 2 else Account.enabled.is_(wanted.pop()) if wanted else false()
    column = Account.status if field == "status" else Account.account_type
    enum = Status if field == "status" else AccountType
    return column.in_([enum(value) for value in values])


def _day(field: str, pattern: list) -> ColumnElement[bool]:
    if any(not isinstance(part, str) for part in pattern):
        raise QueryError(f"'{field}:' takes a date such as 2026-11-23, not a wildcard.")
    day, column = "".join(pattern), DATE_FIELDS[field]
    return and_(column >= _date_bound(day, end=False), column < _date_bound(day, end=True))


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
        raise QueryError(f"'{text}' is not a date this search can use: "
                         "write 2026-11-23 or 2026-11-23T14:30.") from None


def _date_text(node: tree.Item) -> str:
    """A date range end or bound as written, its backslash escapes undone (`10\\:00` is 10:00)."""
    if not isinstance(node, tree.Word):
        raise QueryError("A date range takes dates such as 2026-11-23, not phrases.")
    return "".join(_pattern(node.value, wildcards=False))


def _bound_text(node: tree.Item | None) -> str | None:
    """A range end on text, folded, its escapes undone: a word, a phrase or a negative number (`-5`)."""
    if node is None:
        return None
    if isinstance(node, tree.Prohibit):
        return "-" + (_bound_text(node.a) or "")
    text = node.value[1:-1] if isinstance(node, tree.Phrase) else node.value
    return fold("".join(_pattern(text, wildcards=False)))


def _is_star(node: tree.Item) -> bool:
    return isinstance(node, tree.Word) and node.value == "*"


def _depth(node: tree.Item) -> int:
    """How deeply the query nests: brackets, NOT, + and - each add a level."""
    nested = isinstance(node, tree.BaseGroup | tree.Not | tree.Prohibit | tree.Plus)
    return nested + max((_depth(child) for child in node.children), default=0)


def _terms(node: tree.Item) -> int:
    """How many values the query compares: each word of a term or phrase, each range and bound."""
    if isinstance(node, tree.Term):
        return max(1, len(words(node.value)))
    if isinstance(node, tree.Range | tree.From | tree.To):
        return 1
    return sum(_terms(child) for child in node.children)


def _syntax_name(node: tree.Item) -> str:
    return {"Fuzzy": "Fuzzy search (~)", "Proximity": "Proximity search (\"…\"~n)",
            "Regex": "A regular expression (/…/)"}.get(type(node).__name__, type(node).__name__)


def _reason(exc: Exception) -> str:
    text = str(exc).split(" : ", 1)[-1].strip().rstrip(".!")
    return text[:160] or "unexpected syntax"
