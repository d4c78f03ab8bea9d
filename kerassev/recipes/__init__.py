"""kerassev.recipes."""
