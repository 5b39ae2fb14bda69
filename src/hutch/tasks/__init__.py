"""Tasks for agents ("employees"): planned step by step by the agent's model, then worked through."""
