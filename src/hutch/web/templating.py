"""Jinja2 templates and static files of the web pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hutch.core.brand import Brand

WEB_DIR = Path(__file__).parent
DEFAULT_BRAND = Brand()


def brand_of(request: Request) -> Brand:
    """The operator's brand, built at start-up with the process's resources."""
    resources = getattr(request.app.state, "resources", None)
    brand = getattr(resources, "brand", None)
    return brand if isinstance(brand, Brand) else DEFAULT_BRAND


def _brand_context(request: Request) -> dict[str, Any]:
    return {"brand": brand_of(request)}


# Autoescaping is on for .html; every page gets ``brand`` (name, logos, colour, support address, pages).
templates = Jinja2Templates(directory=WEB_DIR / "templates", context_processors=[_brand_context])


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def static_files() -> StaticFiles:
    return StaticFiles(directory=WEB_DIR / "static")
