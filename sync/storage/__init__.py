"""Database adapters: SQLAlchemy stores for the CCB and MDM sides (SQLite or PostgreSQL by URL)."""
