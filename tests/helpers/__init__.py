"""Shared test helpers: tiny models built on the spot, brute-force references, and CLI runners."""
