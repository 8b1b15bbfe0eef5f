"""Command handlers, one module per command; they never import each other."""
