"""Campaigns, leases, labels, the final-label rule and adjudication: services, selectors, API and pages."""
