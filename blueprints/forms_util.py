"""Helpers shared by the console's form views."""

from collections.abc import Callable
from typing import Any

from flask import flash
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
