"""Voice: LiveKit rooms where people talk with an agent, paid by the second from prepaid time."""
