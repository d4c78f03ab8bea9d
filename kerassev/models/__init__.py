"""kerassev.models."""
