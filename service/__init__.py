"""A multi-tenant key-value namespace service on PostgreSQL."""
