"""``python -m hutch.runtimes``: the runtime's own entry point, what drivers start.

It loads only what serving one agent needs (no database, no migrations, no command-line toolkit), so a
runtime starts as fast as its model libraries load. ``hutch runtime`` does the same with the CLI around it.
"""

from __future__ import annotations

import argparse
import os
import sys
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
    if args.agent_config is not None:
        workspace = args.workspace or default_workspace(args.agent_config)
        return serve(args.agent_config, args.port, args.host, workspace)
    # Read from the environment as it is: a file would leave the provider keys on disk after the runtime.
    inline = os.environ.get("HUTCH_RUNTIME_CONFIG")
    if not inline:
        parser.error("give --agent-config FILE or set HUTCH_RUNTIME_CONFIG")
    if args.workspace is None:
        parser.error("give --workspace DIR for the agent's memory files along with HUTCH_RUNTIME_CONFIG")
    return serve(inline, args.port, args.host, args.workspace)


def default_workspace(agent_config: Path) -> Path:
    return agent_config.parent / "workspace"


def serve(source: Path | str, port: int, host: str, workspace: Path) -> int:
    """Serve the agent whose config is in the file ``source``, or is ``source`` itself (JSON)."""
    import uvicorn

    from hutch.core.logging import configure_logging
    from hutch.engine.catalog import CatalogError
    from hutch.runtimes.config import RuntimeConfig, read_config
    from hutch.runtimes.server import create_runtime_app
    from hutch.settings import SettingsError, load_settings

    where = source if isinstance(source, Path) else "in HUTCH_RUNTIME_CONFIG"  # never the keys it holds
    try:
        config = (
            read_config(source) if isinstance(source, Path) else RuntimeConfig.model_validate_json(source)
        )
        settings = load_settings()
        configure_logging(json_logs=settings.json_logs, level=settings.log_level)
        app = create_runtime_app(config, workspace, settings)
    except OSError as exc:  # the config file, or the workspace (its path is in the message)
        print(f"Error: Cannot read the agent config {where}: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        # Named by place and problem only: pydantic's own text quotes the input, provider keys included.
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'config'}: {error['msg']}"
            for error in exc.errors(include_input=False)
        )
        print(f"Error: The agent config {where} is not valid: {problems}", file=sys.stderr)
        return 1
    except (SettingsError, CatalogError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
