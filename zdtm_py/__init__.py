"""The conformance harness and its pytest plugin (see plugin.py)."""
