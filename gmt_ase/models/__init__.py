"""Shipped model checkpoints and their model cards (package data)."""
