"""Dramatiq actors that render jobs and deliver webhooks, and the followers that feed them."""
