"""Pure scorer logic: no Django, no HTTP."""
