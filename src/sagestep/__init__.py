"""sagestep: tabular model lifecycle on SageMaker + Step Functions, runnable locally."""

__version__ = "0.1.0"
