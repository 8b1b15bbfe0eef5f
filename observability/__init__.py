"""What the service tells about itself beyond logs and metrics: OpenTelemetry traces (tracing.py).

A library every app may use; it imports none of them.
"""
