"""The operator's brand: the product name, logos, colour, sender and support address, landing text and extra
pages that customers and end users see instead of "Hutch".

Built once at start-up from the ``HUTCH_BRAND_*`` settings and the optional TOML file named by
``HUTCH_BRAND_FILE`` (whose keys override the settings); a bad value stops the start with a message naming
the setting or the file's key. Nothing here reads the environment: the settings object is the only input.
"""

from __future__ import annotations

import re
import tomllib
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hutch.settings import Settings

PRODUCT = "Hutch"  # the software's own name: the default brand and the "Powered by" line
DEFAULT_COLOR = "#2458c6"  # the dashboard's accent before any brand is set
HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
PAGE_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# Pages served at their own fixed address; every other page is at /pages/<slug>.
FIXED_PAGES = {"privacy": "/privacy", "terms": "/terms"}
# Settings and the brand-file key each one sets.
SETTING_KEYS = {
    "name": "HUTCH_BRAND_NAME",
    "logo_url": "HUTCH_BRAND_LOGO_URL",
    "primary_color": "HUTCH_BRAND_PRIMARY_COLOR",
    "support_email": "HUTCH_SUPPORT_EMAIL",
    "email_from": "HUTCH_EMAIL_FROM",
    "powered_by": "HUTCH_POWERED_BY",
}


class BrandError(Exception):
    """The brand's settings or file are wrong; the message names the setting or key."""


Text = Annotated[str, Field(min_length=1, max_length=200)]


def _check_link(value: str | None) -> str | None:
    """A logo or favicon address: an http(s) URL, or a path on this site (``/brand/logo.svg``)."""
    if value is None:
        return None
    if value.startswith("/") and not value.startswith("//"):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return value
    raise ValueError("must be an http(s) URL or a path on this site starting with /")


def _mailbox(name: str, address: str) -> str:
    """``Name <address>``, the name quoted where mail needs it and left readable (not encoded) otherwise."""
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (HeaderParseError, IndexError, ValueError):
        raise ValueError("must look like Name <address@example.com>") from None


def _check_address(value: str | None) -> str | None:
    if value is None:
        return None
    name, address = parseaddr(value)
    if name or "@" not in address or address != value.strip():
        raise ValueError("must be an email address like support@example.com")
    return address


class Page(BaseModel):
    """A page of the operator's own (privacy policy, terms, about...), written in Markdown or plain text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str
    title: Text
    file: Path

    @property
    def path(self) -> str:
        return FIXED_PAGES.get(self.slug, f"/pages/{self.slug}")


class Landing(BaseModel):
    """The landing page's own text (Markdown) in place of the default, and its title."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Text | None = None
    file: Path | None = None


class Brand(BaseModel):
    """Everything customers and end users see of the operator's product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text = PRODUCT
    logo_url: str | None = None
    logo_dark_url: str | None = None  # shown where the visitor's system uses a dark theme
    favicon_url: str | None = None
    primary_color: str | None = None  # None: the dashboard's own accent (and the widget's)
    support_email: str | None = None
    email_from: str | None = None  # "Name <address>"; None: the brand's name at noreply@<public host>
    legal_entity: Text | None = None  # who runs the service, in the footer and emails ("Acme Ltd.")
    public_url: str | None = None  # the address people know the service by; None: HUTCH_PUBLIC_URL
    powered_by: bool = True
    landing: Landing = Landing()
    pages: tuple[Page, ...] = ()
    assets_dir: Path | None = None  # files served at /brand/ (a logo, a favicon) when no other host has them
    default_host: str = "localhost"  # the public address's host, for the default sender

    @field_validator("logo_url", "logo_dark_url", "favicon_url")
    @classmethod
    def _links(cls, value: str | None) -> str | None:
        return _check_link(value)

    @field_validator("primary_color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not HEX_COLOR.match(value):
            raise ValueError("must be a hex colour like #2458c6")
        return value.lower() if value else None

    @field_validator("support_email")
    @classmethod
    def _support(cls, value: str | None) -> str | None:
        return _check_address(value)

    @field_validator("email_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name, address = parseaddr(value)
        if not name or "@" not in address:
            raise ValueError("must look like Name <address@example.com>")
        return _mailbox(name, address)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL like https://ai.example.com")
        return value.rstrip("/")

    @property
    def is_custom(self) -> bool:
        """True once the operator named their product: then "Hutch" shows only in the powered-by line."""
        return self.name != PRODUCT

    @property
    def accent(self) -> str:
        return self.primary_color or DEFAULT_COLOR

    @property
    def accent_ink(self) -> str:
        """Text on the accent colour: white on dark colours, near-black on light ones (readable contrast)."""
        digits = self.accent.lstrip("#")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        red, green, blue = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))

        def linear(c: float) -> float:
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        luminance = 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)
        return "#ffffff" if (1.05 / (luminance + 0.05)) >= 4.5 else "#1d2330"

    @property
    def sender(self) -> str:
        """The From of every email."""
        return self.email_from or _mailbox(self.name, f"noreply@{self.default_host}")

    @property
    def software(self) -> str:
        """The software's own name, which the "Powered by" credit gives (in the reader's language)."""
        return PRODUCT

    @property
    def powered_by_line(self) -> str | None:
        """The discreet credit under a branded product, unless the operator turned it off."""
        return f"Powered by {PRODUCT}" if self.is_custom and self.powered_by else None

    @property
    def footer_pages(self) -> list[Page]:
        """Privacy and terms always (a default text until the operator publishes one), then the others."""
        own = {p.slug: p for p in self.pages}
        fixed = [own.get(slug) or Page(slug=slug, title=title, file=Path()) for slug, title in DEFAULT_TITLES]
        return fixed + [p for p in self.pages if p.slug not in FIXED_PAGES]

    def page(self, slug: str) -> Page | None:
        return next((p for p in self.pages if p.slug == slug), None)


DEFAULT_TITLES = (("privacy", "Privacy"), ("terms", "Terms"))


def load_brand(settings: Settings) -> Brand:
    """The brand from the settings and the brand file; raises :class:`BrandError` naming what is wrong."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    from_settings = {
        "name": settings.brand_name,
        "logo_url": settings.brand_logo_url,
        "primary_color": settings.brand_primary_color,
        "support_email": settings.support_email,
        "email_from": settings.email_from,
        "powered_by": settings.powered_by,
    }
    for key, value in from_settings.items():
        if isinstance(value, str):
            value = value.strip() or None
        if value is not None:
            values[key] = value
            origin[key] = SETTING_KEYS[key]
    host = urlsplit(settings.base_url).hostname or "localhost"
    if settings.brand_file is not None:
        file_values = _read_file(settings.brand_file)
        values.update(file_values)
        origin.update({key: f"HUTCH_BRAND_FILE ({settings.brand_file}): {key}" for key in file_values})
        if isinstance(file_values.get("public_url"), str):
            host = urlsplit(file_values["public_url"]).hostname or host
    values["default_host"] = host
    try:
        return Brand.model_validate(values)
    except ValidationError as exc:
        raise BrandError(_describe(exc, origin)) from None


def _describe(exc: ValidationError, origin: dict[str, str]) -> str:
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"]]
    key = location[0] if location else "brand"
    where = origin.get(key, f"HUTCH_BRAND_FILE: {key}")
    rest = ".".join(location[1:])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a brand setting (see docs/brand.md)"
    return f"{where}{'.' + rest if rest else ''}: {message}"


def _read_file(path: Path) -> dict[str, Any]:
    """The file's keys, with its page and landing files resolved next to it and checked to exist."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BrandError(f"HUTCH_BRAND_FILE ({path}): cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BrandError(f"HUTCH_BRAND_FILE ({path}): not valid TOML: {exc}") from None
    where = f"HUTCH_BRAND_FILE ({path})"
    if "default_host" in raw:  # derived from the public URL, not set
        raise BrandError(f"{where}: default_host: is not a brand setting (see docs/brand.md)")
    base = path.parent
    landing = raw.get("landing")
    if isinstance(landing, dict) and isinstance(landing.get("file"), str):
        landing["file"] = _existing(base, landing["file"], f"{where}: landing.file")
    pages = raw.get("pages")
    if pages is not None:
        if not isinstance(pages, dict):
            raise BrandError(f"{where}: pages: must be a table of [pages.<name>] sections")
        listed = []
        for slug, page in pages.items():
            if not PAGE_SLUG.match(slug):
                raise BrandError(f"{where}: pages.{slug}: a page's name is lowercase letters, digits and -")
            if not isinstance(page, dict) or not isinstance(page.get("file"), str):
                raise BrandError(f"{where}: pages.{slug}.file: each page needs a file (Markdown or .txt)")
            found = _existing(base, page["file"], f"{where}: pages.{slug}.file")
            listed.append({**page, "slug": slug, "file": found})
        raw["pages"] = listed
    if isinstance(raw.get("assets_dir"), str):
        folder = (base / raw["assets_dir"]).resolve()
        if not folder.is_dir():
            raise BrandError(f"{where}: assets_dir: {folder} is not a folder")
        raw["assets_dir"] = folder
    return raw


def _existing(base: Path, name: str, where: str) -> Path:
    found = (base / name).resolve()
    if not found.is_file():
        raise BrandError(f"{where}: {found} does not exist")
    return found
