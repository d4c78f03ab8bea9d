"""kerassev.stats."""
