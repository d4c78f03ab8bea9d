"""Reference implementations (PyTorch) used only by parity tests."""
