"""kerassev.losses."""
