"""One module per kind of fact: its public schema, its filters and its routes."""
