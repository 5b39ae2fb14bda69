"""What an org connects for its agents to call: MCP servers and webhook tools."""
