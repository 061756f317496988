"""Reproducible generator of the training and held-out corpora (see ``corpus/README.md``)."""
