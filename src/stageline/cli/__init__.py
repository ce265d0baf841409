"""The `stageline` command: the composition root. May import anything; nothing imports it."""
