"""Registered experiments: one module per paper claim or figure (auto-discovered by the registry)."""
