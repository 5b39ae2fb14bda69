"""Where a dedicated runtime runs: each driver starts, checks, stops and removes runtimes its own way."""
