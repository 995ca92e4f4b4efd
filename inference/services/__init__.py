"""Writes of the inference app: endpoints.py, runs.py, generation.py (filling outputs), imports.py."""
