"""Console accounts: users, sessions, the audit log of what they did (issue 8)."""
