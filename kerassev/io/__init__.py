"""kerassev.io."""
