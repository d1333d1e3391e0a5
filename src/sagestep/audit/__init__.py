"""The audit trail: one JSON record per decision (schema `audit-record.schema.json`), append-only, in the audit bucket."""
