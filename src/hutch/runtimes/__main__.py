"""``python -m hutch.runtimes``: the runtime's own entry point, what drivers start.

It loads only what serving one agent needs (no database, no migrations, no command-line toolkit), so a
runtime starts as fast as its model libraries load. ``hutch runtime`` does the same with the CLI around it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hutch.runtimes", description=__doc__)
    # Or HUTCH_RUNTIME_CONFIG holding the config itself (containers and machines get it that way).
    parser.add_argument("--agent-config", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workspace", type=Path)
    args = parser.parse_args(argv)
    agent_config = args.agent_config
    if agent_config is None:
        inline = os.environ.get("HUTCH_RUNTIME_CONFIG")
        if not inline:
            parser.error("give --agent-config FILE or set HUTCH_RUNTIME_CONFIG")
        agent_config = Path(tempfile.mkdtemp(prefix="hutch-runtime-")) / "agent.json"
        agent_config.write_text(inline)
        agent_config.chmod(0o600)
    return serve(agent_config, args.port, args.host, args.workspace)


def serve(agent_config: Path, port: int, host: str, workspace: Path | None) -> int:
    import uvicorn

    from hutch.core.logging import configure_logging
    from hutch.engine.catalog import CatalogError
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
