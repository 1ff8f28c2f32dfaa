"""Errors services raise; views turn them into messages, forms errors or status codes."""


class ServiceError(Exception):
    """A rule said no; the message is safe to show to the person who asked."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    """The object does not exist, or the actor may not know it exists."""


class Conflict(ServiceError):
    """The change would break a uniqueness or integrity rule."""


class Invalid(ServiceError):
    """The input breaks a business rule the form cannot check alone."""


class Forbidden(ServiceError):
    """The actor's role does not allow this."""


class Throttled(ServiceError):
    """Too many attempts; try later."""
