"""Experiments on the classifier that were measured but not shipped; see each module."""
