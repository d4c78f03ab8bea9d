"""kerassev.data.loaders."""
