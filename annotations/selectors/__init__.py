"""Reads: one module per area; aggregate queries, never Python loops over rows."""
