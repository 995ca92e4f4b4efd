"""The REST API of the inference app (DRF)."""
