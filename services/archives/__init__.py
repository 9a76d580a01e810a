"""Operator archives (B2–B4), their review, and the interconnection application (B5)."""
