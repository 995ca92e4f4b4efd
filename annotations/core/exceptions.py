"""The one domain exception services raise; views and the API turn it into a 400 with its message."""


class AuditError(Exception):
    """A request the domain refuses, with a message for the user and optional itemised errors.

    `errors` is a list of dicts such as {"row": 3, "field": "text", "message": "..."} so an upload
    can report every problem at once, naming the row or line and the field.
    """

    def __init__(self, message: str, *, errors: list[dict] | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        self.code = code

    def as_dict(self) -> dict:
        """The error as a JSON-able dict."""
        return {"detail": self.message, "code": self.code, "errors": self.errors}


class NotFoundError(AuditError):
    """The object does not exist or the user may not see it (the two are not told apart)."""

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, code="not_found")
