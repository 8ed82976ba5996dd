"""Entrypoints: the aiohttp API, the CLI, and the embedded single-process system."""
