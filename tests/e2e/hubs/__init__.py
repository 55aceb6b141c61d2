"""End-to-end hubs tests through GraphQL, one module per use case; they share
one system per store for the whole package (conftest.py)."""
