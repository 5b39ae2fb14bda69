"""Chat turns: the one flow every channel runs (see ``hutch.turns.flow``)."""
