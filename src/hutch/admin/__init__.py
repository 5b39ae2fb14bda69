"""Platform administration: key rotation now; stats, analytics and alerts later."""
