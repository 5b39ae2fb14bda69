"""Anthropic's Messages API over an agent's turn, for clients built on Anthropic's SDKs."""
