"""Operator-side knowledge of the training pipeline: its run records, manual approvals and settings.
Used by the CLI against AWS or the local cloud alike (plain boto3 clients)."""
