"""Helpers shared by the console's form views."""

from collections.abc import Callable
from typing import Any

from flask import abort, flash, request
from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.validators import ValidationError

from services.errors import ServiceError


def show_error(form: FlaskForm, error: ServiceError) -> None:
    """Put a service's refusal next to the field it names, or on top of the page."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        flash(error.message, "error")


def service_rule(check: Callable[[Any], Any]) -> Callable[[FlaskForm, Field], None]:
    """A field validator that applies a service's rule (one home for it) and keeps its normalised value."""

    def validate(_form: FlaskForm, field: Field) -> None:
        try:
            field.data = check(field.data)
        except ServiceError as exc:
            raise ValidationError(exc.message) from None

    return validate


def refuse_nul_characters() -> None:
    """Answer 400 to a form or query value holding a NUL character: PostgreSQL cannot store or compare one
    (SQLite can), so it would fail as a 500 deep inside a write. The client API checks its JSON itself;
    the account search says so beside its search box."""
    current = request._get_current_object()  # runs on every request: the proxy is looked up once
    if current.path.startswith("/api/"):
        return
    values = []
    # Parsed only when there is something to parse: a phone's GET of its link page has neither.
    if current.want_form_data_parsed:  # a body with a Content-Type
        values += current.form.values()
    if current.query_string:
        values += (v for k, v in current.args.items(multi=True) if k != "q")
    if any("\x00" in value for value in values):
        abort(400, "The form or link contains a NUL character (\\0), which no field accepts. Remove it and "
                   "try again.")
