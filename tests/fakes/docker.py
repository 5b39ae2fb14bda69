"""A local Docker Engine API: the endpoints the Docker SDK calls to run, inspect, stop and remove
containers and volumes (API v1.45, JSON bodies, Docker's error shape, multiplexed log streams).

No Docker engine runs on the test machines. A started container here is a small HTTP server on a free port
answering ``/healthz`` like a runtime, published as the container's port, so readiness checks work for real.
"""

from __future__ import annotations

import itertools
import secrets
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

PREFIX = "/v{version}"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str
    env: list[str]
    labels: dict[str, str]
    host_config: dict[str, Any]
    volumes: list[str]
    running: bool = False
    host_port: int | None = None
    server: ThreadingHTTPServer | None = None
    log: list[str] = field(default_factory=list)

    def start(self) -> None:
        if self.running:
            return
        self.server = ThreadingHTTPServer(("127.0.0.1", self.host_port or 0), _Health)
        self.host_port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.running = True
        self.log.append(f"Uvicorn running on http://0.0.0.0:8000 (container {self.name})")

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.running = False

    def inspect(self) -> dict[str, Any]:
        ports = {
            "8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(self.host_port)}] if self.running else None
        }
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "Image": self.image,
            "State": {"Status": "running" if self.running else "exited", "Running": self.running},
            "Config": {"Image": self.image, "Env": self.env, "Labels": self.labels, "Tty": False},
            "HostConfig": self.host_config,
            "NetworkSettings": {"Ports": ports},
        }


def _no_such(kind: str, ref: str) -> JSONResponse:
    return JSONResponse({"message": f"No such {kind}: {ref}"}, status_code=404)


class FakeDockerEngine(BackgroundServer):
    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.volumes: set[str] = set()
        self.images: set[str] = {"hutch-runtime:latest"}
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        routes = [
            Route(PREFIX + "/containers/create", self._create, methods=["POST"]),
            Route(PREFIX + "/containers/{ref}/json", self._inspect, methods=["GET"]),
            Route(PREFIX + "/containers/{ref}/start", self._start, methods=["POST"]),
            Route(PREFIX + "/containers/{ref}/stop", self._stop, methods=["POST"]),
            Route(PREFIX + "/containers/{ref}/kill", self._stop, methods=["POST"]),
            Route(PREFIX + "/containers/{ref}/logs", self._logs, methods=["GET"]),
            Route(PREFIX + "/containers/{ref}", self._remove, methods=["DELETE"]),
            Route(PREFIX + "/volumes/{name}", self._volume, methods=["GET"]),
            Route(PREFIX + "/volumes/{name}", self._remove_volume, methods=["DELETE"]),
        ]
        super().__init__(Starlette(routes=routes))

    @property
    def address(self) -> str:
        return self.base_url.replace("http://", "tcp://", 1)

    def reset(self) -> None:
        for container in self.containers.values():
            container.stop()
        self.containers.clear()
        self.volumes.clear()
        self.calls.clear()

    def find(self, ref: str) -> FakeContainer | None:
        if ref in self.containers:
            return self.containers[ref]
        return next((c for c in self.containers.values() if c.name == ref or c.id.startswith(ref)), None)

    def crash(self, ref: str) -> None:
        """The process in the container dies (Docker's restart policy would bring it back)."""
        container = self.find(ref)
        assert container is not None
        container.stop()

    async def _create(self, request: Request) -> Response:
        body = await request.json()
        name = request.query_params.get("name") or f"c{next(self._ids)}"
        self.calls.append(("create", name))
        if body.get("Image") not in self.images:
            return JSONResponse({"message": f"No such image: {body.get('Image')}"}, status_code=404)
        if any(c.name == name for c in self.containers.values()):
            return JSONResponse({"message": f'Conflict. The container name "/{name}" is in use'}, 409)
        binds = (body.get("HostConfig") or {}).get("Binds") or []
        volumes = [bind.split(":")[0] for bind in binds if not bind.startswith("/")]
        self.volumes.update(volumes)
        container_id = secrets.token_hex(32)
        self.containers[container_id] = FakeContainer(
            id=container_id,
            name=name,
            image=body["Image"],
            env=body.get("Env") or [],
            labels=body.get("Labels") or {},
            host_config=body.get("HostConfig") or {},
            volumes=volumes,
        )
        return JSONResponse({"Id": container_id, "Warnings": []}, status_code=201)

    async def _inspect(self, request: Request) -> Response:
        container = self.find(request.path_params["ref"])
        if container is None:
            return _no_such("container", request.path_params["ref"])
        return JSONResponse(container.inspect())

    async def _start(self, request: Request) -> Response:
        container = self.find(request.path_params["ref"])
        if container is None:
            return _no_such("container", request.path_params["ref"])
        self.calls.append(("start", container.name))
        container.start()
        return Response(status_code=204)

    async def _stop(self, request: Request) -> Response:
        container = self.find(request.path_params["ref"])
        if container is None:
            return _no_such("container", request.path_params["ref"])
        self.calls.append(("stop", container.name))
        container.stop()
        return Response(status_code=204)

    async def _remove(self, request: Request) -> Response:
        container = self.find(request.path_params["ref"])
        if container is None:
            return _no_such("container", request.path_params["ref"])
        if container.running and request.query_params.get("force") not in ("1", "true", "True"):
            return JSONResponse({"message": "You cannot remove a running container"}, status_code=409)
        self.calls.append(("remove", container.name))
        container.stop()
        del self.containers[container.id]
        return Response(status_code=204)

    async def _logs(self, request: Request) -> Response:
        container = self.find(request.path_params["ref"])
        if container is None:
            return _no_such("container", request.path_params["ref"])
        tail = request.query_params.get("tail", "all")
        lines = container.log if tail == "all" else container.log[-int(tail) :]
        # Docker's multiplexed stream: one 8-byte header (stream 1 = stdout, then the size) per frame.
        frames = b"".join(struct.pack(">BxxxL", 1, len(line) + 1) + line.encode() + b"\n" for line in lines)
        return Response(frames, media_type="application/vnd.docker.raw-stream")

    async def _volume(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.volumes:
            return _no_such("volume", name)
        return JSONResponse(
            {"Name": name, "Driver": "local", "Mountpoint": f"/var/lib/docker/volumes/{name}"}
        )

    async def _remove_volume(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.volumes:
            return _no_such("volume", name)
        self.volumes.discard(name)
        self.calls.append(("remove volume", name))
        return Response(status_code=204)
