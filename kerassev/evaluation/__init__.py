"""kerassev.evaluation."""
