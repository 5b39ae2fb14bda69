"""A page as an agent reads it: its text, with every visible interactive element numbered.

The script runs in the page: it walks the document in order, writes the visible text, and gives each
visible link, button, field and menu a number (kept on the element as ``data-hutch-ref``), shown inline as
``[3] button "Sign in"``. The tools then act on an element by its number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REF_ATTRIBUTE = "data-hutch-ref"
MAX_TEXT_CHARS = 12_000

# Returns {title, url, text}. Numbers restart at 1 on each reading; older numbers are removed first.
READ_PAGE_SCRIPT = r"""
() => {
  const REF = "data-hutch-ref";
  document.querySelectorAll("[" + REF + "]").forEach(e => e.removeAttribute(REF));
  const interactive = "a[href], button, input, select, textarea, summary, [role=button], [role=link], " +
    "[role=checkbox], [role=tab], [role=menuitem], [contenteditable=true], [onclick]";
  const skip = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "SVG", "HEAD"]);
  const visible = (el) => {
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  const squash = (s) => (s || "").replace(/\s+/g, " ").trim();
  let n = 0;
  const out = [];
  const label = (el) => {
    if (el.id) {
      const forLabel = document.querySelector("label[for='" + CSS.escape(el.id) + "']");
      if (forLabel) return squash(forLabel.innerText);
    }
    const wrapping = el.closest("label");
    if (wrapping) return squash(wrapping.innerText);
    return squash(el.getAttribute("aria-label") || el.getAttribute("placeholder") ||
      el.getAttribute("title"));
  };
  const describe = (el) => {
    const tag = el.tagName.toLowerCase();
    if (tag === "a") return 'link "' + squash(el.innerText || el.getAttribute("aria-label")) + '" -> ' +
      el.getAttribute("href");
    if (tag === "select") {
      const options = Array.from(el.options).map(o => (o.selected ? "*" : "") + squash(o.text));
      return 'menu "' + label(el) + '" options: ' + options.join(" | ");
    }
    if (tag === "textarea") return 'text box "' + label(el) + '" value: "' + el.value + '"';
    if (tag === "input") {
      const type = (el.getAttribute("type") || "text").toLowerCase();
      if (type === "hidden") return null;
      if (type === "submit" || type === "button")
        return 'button "' + squash(el.value || label(el)) + '"';
      if (type === "checkbox" || type === "radio")
        return type + ' "' + label(el) + '"' + (el.checked ? " (checked)" : "");
      const shown = type === "password" ? (el.value ? "(filled)" : "") : el.value;
      return type + ' field "' + label(el) + '"' + (el.name ? " name=" + el.name : "") +
        ' value: "' + shown + '"';
    }
    return 'button "' + squash(el.innerText || el.getAttribute("aria-label") || el.value) + '"';
  };
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = squash(node.textContent);
      if (text) out.push(text);
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE || skip.has(node.tagName)) return;
    const el = node;
    if (el.matches(interactive) && visible(el)) {
      const description = describe(el);
      if (description !== null) {
        n += 1;
        el.setAttribute(REF, String(n));
        out.push("[" + n + "] " + description);
        if (el.tagName === "SELECT" || el.tagName === "TEXTAREA" || el.tagName === "INPUT") return;
        if (el.tagName === "A" || el.tagName === "BUTTON") return;
      }
    } else if (!visible(el) && el.tagName !== "BODY" && el.tagName !== "HTML") {
      return;
    }
    const block = /^(P|DIV|H[1-6]|LI|TR|SECTION|ARTICLE|HEADER|FOOTER|FORM|TABLE|UL|OL|BR)$/.test(el.tagName);
    if (block) out.push("\n");
    for (const child of el.childNodes) walk(child);
    if (block) out.push("\n");
  };
  walk(document.body || document.documentElement);
  const text = out.join(" ").replace(/ *\n */g, "\n").replace(/\n{2,}/g, "\n").trim();
  return {title: document.title, url: location.href, text: text, count: n};
}
"""


@dataclass(frozen=True)
class PageReading:
    title: str
    url: str
    text: str
    elements: int

    @classmethod
    def of(cls, raw: dict[str, Any]) -> PageReading:
        return cls(
            str(raw.get("title") or ""),
            str(raw.get("url") or ""),
            str(raw.get("text") or ""),
            int(raw.get("count") or 0),
        )

    def for_model(self, limit: int = MAX_TEXT_CHARS) -> str:
        text = (
            self.text
            if len(self.text) <= limit
            else self.text[:limit] + "\n[... the rest of the page is cut]"
        )
        return f"Page: {self.title or '(no title)'}\nAddress: {self.url}\n\n{text}"


def selector_of(ref: int) -> str:
    return f"[{REF_ATTRIBUTE}='{int(ref)}']"
