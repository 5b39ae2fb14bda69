"""``python -m hutch.runtimes``: the runtime's own entry point, what drivers start.

It loads only what serving one agent needs (no database, no migrations, no command-line toolkit), so a
runtime starts as fast as its model libraries load. ``hutch runtime`` does the same with the CLI around it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hutch.runtimes", description=__doc__)
    parser.add_argument("--agent-config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workspace", type=Path)
    args = parser.parse_args(argv)
    return serve(args.agent_config, args.port, args.host, args.workspace)


def serve(agent_config: Path, port: int, host: str, workspace: Path | None) -> int:
    import uvicorn

    from hutch.agents.catalog import CatalogError
    from hutch.core.logging import configure_logging
    from hutch.runtimes.config import read_config
    from hutch.runtimes.server import create_runtime_app
    from hutch.settings import SettingsError, load_settings

    try:
        config = read_config(agent_config)
        settings = load_settings()
        configure_logging(json_logs=settings.json_logs, level=settings.log_level)
        app = create_runtime_app(config, workspace or agent_config.parent / "workspace", settings)
    except (OSError, ValidationError) as exc:
        print(f"Error: Cannot read the agent config {agent_config}: {exc}", file=sys.stderr)
        return 1
    except (SettingsError, CatalogError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
