// Replaced by the CLI tests when they land.
