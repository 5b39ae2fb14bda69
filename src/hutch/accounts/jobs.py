"""Jobs of the accounts domain."""
