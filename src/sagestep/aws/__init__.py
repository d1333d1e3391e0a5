"""Runtime: small AWS helpers: S3 I/O, Lambda environment variables, botocore service models, the code bundle."""
