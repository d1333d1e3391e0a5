"""Tooling: the SAM stack as declared in template.yaml, resolved to the names and ARNs a stack would have."""
