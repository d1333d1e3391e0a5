"""Runtime: what answers a scoring request (the script-mode inference core) and the deployment smoke test."""
