"""The audit report: its tables (selectors), tallies, figures, formats, API and pages."""
