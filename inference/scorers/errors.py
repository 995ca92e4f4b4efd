"""The one error type of scorer configurations (and what a scorer cannot parse)."""


class ScorerConfigError(ValueError):
    """A scorer configuration is unusable; `errors` name each field, e.g. `rules[3].phrase`."""

    def __init__(self, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []
