"""Every SQL statement of the program lives in this package; nothing else talks to PostgreSQL."""
