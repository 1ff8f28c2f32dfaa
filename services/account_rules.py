"""The rules of an account, in one place for every path that makes or changes one: the console's forms
(services/accounts.py, blueprints/fields.py), the CSV import, and later the registrar sync or an API.

The account's fields are listed once (FIELDS); the other lists derive from it. The rules are pure
functions of explicit values: a parser returns the value to keep or raises ValueError with the reason
(a form field and a CSV cell both speak it), a rule over several fields returns a Problem. Only `taken`
and `new_usernames` ask the database, a set of values at a time: one account and a file of 100,000 use
the same function."""

import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select

from extensions import db
from models import Account, AccountType
from models.account import fold
from services.errors import Conflict

PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.~"
MIN_GENERATED_PASSWORD = 20
USERNAME_DRAWS = 50  # each draw asks only for what is still missing; collisions are rare
CHUNK = 500  # values per IN (...) query: within every database's parameter limit
PGSM, SNOM = AccountType.PGSM, AccountType.SNOM


@dataclass(frozen=True)
class Field:
    """One field of an account, with what each path needs to know of it."""

    name: str  # the account's attribute, the key of the services' data
    label: str  # as a sentence names it
    help: str  # what to write in its CSV column (docs/csv-import.md)
    column: str = ""  # its CSV column; empty: its name
    required: bool = False  # nothing fills it in: every account, and every CSV file, has it
    only: AccountType | None = None  # the one type of account that has it
    blank: Any = None  # its value on an account of the other type
    default: Any = None  # its value when left unset (the form's default, an empty CSV cell)
    editable: bool = True  # a CSR may change it after creation
    unique: str = ""  # the namespace in which no two accounts share a value
    any_case: bool = False  # unique whatever the case of its letters (see unique_key)
    attribute: bool = True  # a column of the account (the password is stored encrypted, the rules as rows)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column", self.column or self.name)


# In the order of the CSV columns (the export, the sample file, the docs).
FIELDS = (
    Field("callerid", "virtual phone number", required=True, unique="number", editable=False,
          help="Virtual phone number, international with a leading +, e.g. +41791234567. Fixed after "
               "creation."),
    Field("username", "username", unique="username", any_case=True,
          help="Empty: a random free number, as the wizard makes. Else 3 to 64 letters, digits and "
               "- _ . ! ~ * ' ( ) +."),
    Field("password", "password", editable=False, attribute=False,
          help="Empty: generated (recommended). Else at least 12 characters, not the username."),
    Field("owner", "owner", help="The end user's name. At most 128 characters."),
    Field("email", "e-mail address", help="The end user's e-mail address, for e-mail messages."),
    Field("description", "description", help="Free text. At most 2,000 characters."),
    Field("group_id", "group", column="group",
          help="Group name. Empty: the default group chosen on the upload page."),
    Field("profile_id", "provisioning profile", column="profile",
          help="Provisioning profile name. Empty: the group's profile."),
    Field("account_type", "account type", default=PGSM.value, editable=False,
          help="pgsm (default, the softphone) or snom (a desk phone)."),
    Field("secondary_callerid", "secondary number", unique="number", editable=False,
          help="Optional second number; different from the first. Fixed after creation."),
    Field("security_model", "security model", only=PGSM,  # default: the first configured model
          help="PGSM only. One of the configured models; empty: the first one."),
    Field("obfuscation", "obfuscation", only=PGSM, blank=False, default=True,
          help="PGSM only. yes or no; empty: yes."),
    Field("obfuscation_key", "obfuscation key", only=PGSM, blank="", default="9",
          help="PGSM only. Empty: 9. Must match the client's."),
    Field("keepalive", "keep-alive", only=PGSM, blank=False, default=False,
          help="PGSM only. yes or no; empty: no. Clients older than 11.1 cannot answer it."),
    Field("mac_address", "MAC address", only=SNOM, unique="mac",
          help="SNOM only. 12 hex digits, e.g. 00:04:13:92:2D:24; empty: bound at first fetch."),
    Field("deny", "deny rules", only=SNOM, blank=(), attribute=False,
          help="SNOM only. <ip>/<netmask> rules separated by ; e.g. 0.0.0.0/0.0.0.0."),
    Field("permit", "permit rules", only=SNOM, blank=(), attribute=False,
          help="SNOM only. <ip>/<netmask> rules separated by ; e.g. 216.27.242.66/255.255.255.255."),
    Field("licence_expires_on", "licence expiry date", help="Optional date, YYYY-MM-DD."),
)
BY_NAME = {field.name: field for field in FIELDS}
NAMES = tuple(field.name for field in FIELDS)
# The attributes a CSR may change after creation (the access rules too, set as rows of their own).
EDITABLE = tuple(field.name for field in FIELDS if field.editable and field.attribute)
UNIQUE = tuple(field for field in FIELDS if field.unique)
DEFAULTS = {field.name: field.default for field in FIELDS if field.default is not None}
_FOREIGN = {kind: tuple(field for field in FIELDS if field.only not in (None, kind)) for kind in AccountType}
_BLANKS = {kind: {field.name: field.blank for field in fields} for kind, fields in _FOREIGN.items()}
USERNAME_LENGTHS = (3, 64)
# RFC 3261's user part (unreserved characters), without the escapes and the separators (; ? / & = , $)
# that a URI, a file name or a log line would read otherwise; ASCII only, as the grammar's alphanum.
_USERNAME = re.compile(r"[A-Za-z0-9\-_.!~*'()+]+")
_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_MAC = re.compile(r"[0-9A-F]{12}")


class Problem(NamedTuple):
    """A rule an account breaks: the field it is about, and what to tell the person."""

    field: str
    message: str


# --- one field ---------------------------------------------------------------------------------------


def parse_username(text: str) -> str | None:
    """Return a username a SIP URI's user part carries as it is; None when empty (one is generated)."""
    if not text:
        return None
    shortest, longest = USERNAME_LENGTHS
    if not (shortest <= len(text) <= longest and _USERNAME.fullmatch(text)):
        raise ValueError(f"A username has {shortest} to {longest} characters: letters, digits and "
                         "- _ . ! ~ * ' ( ) + (no spaces, no accents).")
    return text


def parse_mac(text: str) -> str | None:
    """Return a MAC address written in any usual notation as 12 upper-case hex digits; None when empty."""
    if not text:
        return None
    digits = _MAC_SEPARATORS.sub("", text).upper()
    if not _MAC.fullmatch(digits):
        raise ValueError("A MAC address has 12 hexadecimal digits, e.g. 00:04:13:92:2D:24.")
    return digits


def wizard_number_problem(callerid: str) -> Problem | None:
    """An account made for automatic activation needs an international number (a leading +)."""
    if not callerid.startswith("+"):
        return Problem("callerid", "Automatic activation needs an international number with a leading +.")
    return None


# --- the account's type ------------------------------------------------------------------------------


def foreign(account_type: str) -> tuple[Field, ...]:
    """The fields an account of this type has not: a softphone's on a desk phone, and the other way round."""
    return _FOREIGN[account_type]


def settle(values: Mapping[str, Any], account_type: str) -> dict[str, Any]:
    """Return the values with every field the type has not at its blank: a desk phone keeps no softphone
    settings, a softphone no MAC address and no access rules."""
    return {**values, **_BLANKS[account_type]}


def with_defaults(values: Mapping[str, Any], *, security_models: Sequence[str]) -> dict[str, Any]:
    """Return the values with every unset field (None, or an empty text) at its default: a PGSM account,
    obfuscation on with key 9, keep-alive off, the first configured security model."""
    defaults = {**DEFAULTS, "security_model": security_models[0]}
    return {**values, **{name: value for name, value in defaults.items() if values.get(name) in (None, "")}}


# --- where the account goes --------------------------------------------------------------------------


def lacks_profile(profile_id: int | None, group_profile_id: int | None) -> bool:
    """True when a wizard account would have no provisioning profile: none chosen, and none on its group.
    (Which groups a staff user may put accounts in is services.groups.visible_groups.)"""
    return profile_id is None and group_profile_id is None


# --- uniqueness --------------------------------------------------------------------------------------


def secondary_problem(callerid: str | None, secondary_callerid: str | None) -> Problem | None:
    """The secondary number must differ from the primary (both share one namespace anyway)."""
    if callerid and callerid == secondary_callerid:
        return Problem("secondary_callerid", "The secondary number must differ from the primary.")
    return None


def unique_key(field: Field, value: str) -> str:
    """What two values of a unique field are compared by: `PLAIN1` and `plain1` are one username."""
    return fold(value) if field.any_case else value


def wanted(accounts: Iterable[Any]) -> dict[str, set[str]]:
    """The keys (see unique_key) of the values that must be unique of some accounts (anything with the
    fields as attributes: an Account, a checked CSV row), by namespace: a number is one whether primary
    or secondary."""
    found: dict[str, set[str]] = {field.unique: set() for field in UNIQUE}
    for account in accounts:
        for field in UNIQUE:
            if value := getattr(account, field.name):
                found[field.unique].add(unique_key(field, value))
    return found


def clashes(account: Any, taken_values: Mapping[str, AbstractSet[str]]) -> list[Problem]:
    """The unique fields of an account whose value another account has already (see `taken`)."""
    return [Problem(field.name, f"{value} is already used by another account.") for field in UNIQUE
            if (value := getattr(account, field.name))
            and unique_key(field, value) in taken_values[field.unique]]


def taken(values: Mapping[str, AbstractSet[str]], *, other_than: int | None = None) -> dict[str, set[str]]:
    """Ask the database which of the values, by namespace (see `wanted`), some account other than
    `other_than` already has, CHUNK values a query."""
    found: dict[str, set[str]] = {namespace: set() for namespace in values}
    for field in UNIQUE:
        # The folded copy the search keeps (models/account.py) is the key of a field unique in any case.
        column = getattr(Account, f"{field.name}_folded" if field.any_case else field.name)
        ordered = sorted(values.get(field.unique, ()))
        for start in range(0, len(ordered), CHUNK):
            query = select(column).where(column.in_(ordered[start:start + CHUNK]))
            if other_than is not None:
                query = query.where(Account.id != other_than)
            found[field.unique].update(db.session.scalars(query))
    return found


# --- generated values --------------------------------------------------------------------------------


def new_usernames(count: int, *, length: int, avoid: AbstractSet[str] = frozenset()) -> list[str]:
    """Return random numeric usernames of `length` digits that no account has and `avoid` does not hold
    (the wizard's, one at a time or a file's at once)."""
    low, span = 10 ** (length - 1), 9 * 10 ** (length - 1)
    chosen: set[str] = set()
    for _ in range(USERNAME_DRAWS):
        if len(chosen) == count:
            break
        fresh = {str(low + secrets.randbelow(span)) for _ in range(count - len(chosen))} - avoid - chosen
        chosen |= fresh - taken({"username": fresh})["username"]
    if len(chosen) < count:
        wanting = "a free username" if count == 1 else "enough free usernames"
        raise Conflict(f"Could not find {wanting}; raise USERNAME_LENGTH.", field="username")
    return list(chosen)


def new_passwords(count: int, *, length: int) -> list[str]:
    """Return strong random SIP passwords of `length` characters (at least MIN_GENERATED_PASSWORD), from
    one draw of random bytes; they are never shown, only carried by the activation file."""
    length = max(length, MIN_GENERATED_PASSWORD)
    alphabet = PASSWORD_ALPHABET
    limit = 256 - 256 % len(alphabet)  # bytes from here on would favour the alphabet's first letters
    needed, letters = count * length, []
    while len(letters) < needed:
        letters += [alphabet[byte % len(alphabet)] for byte in secrets.token_bytes(needed) if byte < limit]
    text = "".join(letters[:needed])
    return [text[start:start + length] for start in range(0, needed, length)]
