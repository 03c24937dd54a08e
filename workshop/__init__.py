"""Lambda Patterns Workshop: the CLI, the grading machinery and the local Lambda runtime helpers."""
