"""Named placeholders in template text: `{name}` is a placeholder, `{{` and `}}` are literal braces.

Pure code, no Django. We do not use `str.format`: it would accept `{name.__class__}` or `{0}` and
raise on stray braces with messages that do not say where. Everything else (e.g. the study's
`[BLANK]` marker) is literal text and is kept as written.
"""

import re

PLACEHOLDER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def placeholders_parse(text: str) -> list[str]:
    """The placeholder names in `text`, in order of first use; ValueError names any malformed brace."""
    names: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise ValueError(
                f"unmatched '{token}' at character {match.start() + 1} "
                f"(write '{token * 2}' for a literal brace)"
            )
        name = match.group(1)
        if not PLACEHOLDER_NAME.match(name):
            raise ValueError(
                f"malformed placeholder {token!r} at character {match.start() + 1}: "
                "use letters, digits and underscores, e.g. {name}"
            )
        if name not in names:
            names.append(name)
    return names


def placeholders_fill(text: str, values: dict[str, str]) -> str:
    """`text` with every placeholder replaced by `values[name]` (KeyError when one is missing)."""

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]

    return _TOKEN.sub(replace, text)
