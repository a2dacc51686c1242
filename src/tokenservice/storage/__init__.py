"""Storage: the models, the database connection and its errors, the embedded PostgreSQL, and the migrations.

The bottom layer: it imports nothing of the rules, tokens or web.
"""
