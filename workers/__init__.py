"""Dramatiq actors that render jobs, and the follower that hands jobs to them."""
