"""kerassev.transforms."""
