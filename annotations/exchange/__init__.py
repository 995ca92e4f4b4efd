"""Label imports and exports: services, selectors, API and pages."""
