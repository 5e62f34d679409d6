-- Namespace settings: a description and two limits (their checks are in the service and in
-- migrations/0004's triggers). Short: these only change the catalogs, but they lock the
-- tables they alter, so nothing slow may share this transaction.

ALTER TABLE namespaces
    ADD COLUMN description text CHECK (char_length(description) <= 1024),
    ADD COLUMN max_bytes bigint CHECK (max_bytes >= 1),
    ADD COLUMN max_value_size integer CHECK (max_value_size >= 1);

-- The totals that namespace_storage was to hold are kept in namespace_usage (0004) instead.
ALTER TABLE namespace_storage DROP COLUMN key_count, DROP COLUMN value_bytes;
