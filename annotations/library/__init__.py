"""Templates, group lists and prompt sets: importers, services, selectors, API and pages."""
