"""The payment provider: a port the write side calls, and the fake adapter that stands in for a real provider."""
