"""Network building blocks and architectures."""
