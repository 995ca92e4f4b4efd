"""Writes: one module per area; every public function is `<entity>_<verb>` with keyword-only arguments."""
