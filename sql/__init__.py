"""The SQL catalog of mlos_store: schema migrations and named queries.

Installed as the package ``mlos_store.sql`` so the files ship with every wheel.
"""
