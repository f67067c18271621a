"""Test, demo and benchmark code; run from the repository root (`python -m tests.<package>...`)."""
