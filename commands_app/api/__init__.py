"""The write side over HTTP: POST /api/commands/<command>."""
