"""One module per part of the API; see _base.py."""
