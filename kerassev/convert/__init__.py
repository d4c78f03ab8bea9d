"""kerassev.convert."""
