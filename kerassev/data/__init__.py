"""kerassev.data."""
