"""Agents: their settings, role templates, the model catalog and provider keys."""
