"""Comparisons: run one conversation on several models (`runner`) and report it (`report`)."""
