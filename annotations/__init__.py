"""Templates, prompt sets, campaigns, labels, dashboards and statistics."""
