"""kerassev.explain."""
