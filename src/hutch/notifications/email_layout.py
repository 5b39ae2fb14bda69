"""Every email in the operator's brand: the stored plain text gets the brand's signature, and an HTML version
(the brand's name or logo in its colour, the same text, the support address and legal line) goes with it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape

from hutch.core.brand import Brand
from hutch.i18n import _, current_html_lang

URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class BrandedEmail:
    text: str
    html: str


def _footer_lines(brand: Brand, site: str) -> list[str]:
    lines = [brand.name, site]
    if brand.support_email:
        lines.append(_("Questions? Write to {email}.").format(email=brand.support_email))
    if brand.legal_entity:
        lines.append(f"© {brand.legal_entity}")
    if brand.powered_by_line:
        lines.append(_("Powered by {product}").format(product=brand.software))
    return lines


def _absolute(link: str, site: str) -> str:
    return f"{site}{link}" if link.startswith("/") else link


def _paragraph(text: str, accent: str) -> Markup:
    """One paragraph: escaped, its links clickable, its line breaks kept."""
    pieces: list[Markup] = []
    last = 0
    for found in URL.finditer(text):
        url = found.group(0).rstrip(".,;:)")
        end = found.start() + len(url)
        pieces.append(escape(text[last : found.start()]))
        pieces.append(Markup('<a href="{0}" style="color:{1}">{0}</a>').format(url, accent))
        last = end
    pieces.append(escape(text[last:]))
    return Markup("<br>\n").join(Markup("").join(pieces).split("\n"))


def branded_email(subject: str, body: str, brand: Brand, base_url: str) -> BrandedEmail:
    """The text and HTML versions of ``body``; ``base_url`` makes the brand's site paths absolute."""
    site = brand.public_url or base_url
    footer = _footer_lines(brand, site)
    text = body.rstrip("\n") + "\n\n-- \n" + "\n".join(footer) + "\n"
    accent = brand.accent
    if brand.logo_url:
        mark = Markup(
            '<img src="{}" alt="{}" height="32" style="display:block;height:32px;border:0">'
        ).format(_absolute(brand.logo_url, site), brand.name)
    else:
        mark = Markup('<span style="font-size:20px;font-weight:700;color:{}">{}</span>').format(
            accent, brand.name
        )
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    content = Markup("\n").join(
        Markup('<p style="margin:0 0 16px">{}</p>').format(_paragraph(p, accent)) for p in paragraphs
    )
    foot_lines = [escape(line) for line in footer]
    if brand.support_email:  # the address as a link in the HTML version
        link = Markup('<a href="mailto:{0}" style="color:{1}">{0}</a>').format(brand.support_email, accent)
        foot_lines[2] = escape(_("Questions? Write to {email}.")).format(email=link)
    foot = Markup("<br>\n").join(foot_lines)
    html = Markup(
        '<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{subject}</title></head>\n"
        '<body style="margin:0;padding:24px;background:#f5f6f8;color:#1d2330;'
        'font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif">\n'
        '<div style="max-width:560px;margin:0 auto;background:#fff;border-radius:10px;'
        'border-top:4px solid {accent};padding:24px">\n'
        '<div style="margin:0 0 20px">{mark}</div>\n{content}\n'
        '<hr style="border:0;border-top:1px solid #d5dae2;margin:24px 0 12px">\n'
        '<p style="margin:0;font-size:12px;color:#4f5868">{foot}</p>\n'
        "</div>\n</body></html>\n"
    ).format(lang=current_html_lang(), subject=subject, accent=accent, mark=mark, content=content, foot=foot)
    return BrandedEmail(text=text, html=str(html))
