"""URL converters shared by every blueprint."""

from werkzeug.routing import IntegerConverter

from services.keyset import MAX_ID


class IdConverter(IntegerConverter):
    """`<int:…>` in a URL: a row id, so at most MAX_ID; a larger number is no page (404), not a
    driver error."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002
                 max: int | None = MAX_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
