"""Loopback fakes of paid outside APIs, driven by their real client libraries in tests."""
