"""Every SELECT, INSERT, UPDATE and DELETE; functions take the session first, then keywords."""
