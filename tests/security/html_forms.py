"""Read the forms of a page as a browser would: where each posts, and its fields with their current values."""

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Field:
    """One named control: its kind, the value a browser would send, and a select's options."""

    name: str
    kind: str
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    """One <form>: its method, action (as written; empty means the page itself) and controls."""

    method: str
    action: str
    fields: list[Field] = field(default_factory=list)

    def data(self) -> dict[str, str]:
        """What submitting the form unchanged would send (first value of each name)."""
        values: dict[str, str] = {}
        for control in self.fields:
            if control.kind in ("checkbox", "radio") and not control.checked:
                continue
            if control.kind == "select":
                first_option = control.options[0] if control.options else ""
                values.setdefault(control.name, control.value or first_option)
            elif control.kind not in ("submit", "button", "file"):
                values.setdefault(control.name, control.value)
        return values

    def names(self) -> dict[str, str | None]:
        """Every control's name, with what an unchanged submit sends (None: nothing, an unchecked box)."""
        names = dict.fromkeys(c.name for c in self.fields if c.kind not in ("submit", "button"))
        return {**names, **self.data()}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: Field | None = None
        self._textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(attributes.get("method", "get").lower(), attributes.get("action", "")))
        elif not self.forms or "name" not in attributes:
            if tag == "option" and self._select is not None:
                self._option(attributes)
            return
        elif tag == "input":
            self.forms[-1].fields.append(Field(attributes["name"], attributes.get("type", "text").lower(),
                                               attributes.get("value", ""), "checked" in attributes))
        elif tag == "select":
            self._select = Field(attributes["name"], "select")
            self.forms[-1].fields.append(self._select)
        elif tag == "textarea":
            self._textarea = Field(attributes["name"], "textarea")
            self.forms[-1].fields.append(self._textarea)

    def _option(self, attributes: dict) -> None:
        value = attributes.get("value", "")
        self._select.options.append(value)
        if "selected" in attributes:
            self._select.value = value

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms(html: str) -> list[Form]:
    """Every form of a page."""
    reader = _Reader()
    reader.feed(html)
    return reader.forms
