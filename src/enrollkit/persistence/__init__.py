"""Persistence backends. ``dynamodb`` imports boto3; import it only when you use it."""
