"""Housekeeping jobs of the cross-cutting machinery."""
