"""The conversation engine: prompts, model calls with retries and fallback, tools, memory and streaming."""
