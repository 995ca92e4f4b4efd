"""The range of a primary key, and the URL converter that keeps every route inside it.

Primary keys are 64-bit signed integers (BigAutoField) on PostgreSQL and SQLite. Django's `int` converter
accepts any run of digits, so `/campaigns/5525419708553747891409125376/` reached the database and raised
`bigint out of range` (a 500) on the paths that use raw SQL. Every URL pattern with an id uses `<id:...>`
instead: a number outside 1..MAX_ID does not match the route, so it answers 404 before any view runs.
Request bodies use the same bounds (`MAX_ID` in the serializers).
"""

MAX_ID = 2**63 - 1  # the largest primary key; larger numbers are refused as invalid, never sent to the DB


class IdConverter:
    """A primary key in a URL: digits whose value lies in 1..MAX_ID; anything else is no match (404)."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        """The id as an int; ValueError (so Django tries the next route, then 404) when out of range."""
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(f"id {value} is outside 1..{MAX_ID}")
        return number

    def to_url(self, value: int) -> str:
        """The id as it appears in a URL."""
        return str(int(value))
