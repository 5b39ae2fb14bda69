"""Deleting what spans domains (an agent with its runtime, conversations and memories), in one place."""
