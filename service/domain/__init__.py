"""The domain: tenants, namespaces and keys. It speaks no wire format: dataclasses in and out,
and the semantic exceptions of service/domain/errors.py."""
