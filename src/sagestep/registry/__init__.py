"""Runtime: SageMaker Model Registry look-ups, lineage and approvals (boto3 clients are passed in)."""
