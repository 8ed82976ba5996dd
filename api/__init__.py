"""Entry points and the composition root (`bootstrap.py`): the aiohttp API, the CLI, the
worker's Dramatiq entry module, and the embedded single-process system."""
