"""The REST API of the annotations app (DRF)."""
