"""Dedicated runtimes: one agent served by its own process (or container, or machine)."""
