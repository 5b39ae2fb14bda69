"""Small websites the browser tests drive, served over real HTTP on loopback: a login form, a two-page
form, a file to download, cookies to compare, and a redirect to an address the egress guard refuses."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

REPORT = b"Quarterly report\nRevenue grew 12 percent.\n"
# /signin and /pointer place their fields and button at fixed points: (x, y) of each one's centre.
FIXED_STYLE = (
    "body{margin:0}#u,#p,#b{position:fixed;left:100px;width:300px;height:40px;font-size:20px}"
    "#u{top:100px}#p{top:200px}#b{top:300px}"
)
SIGNIN_FIELDS = {"username": (250, 120), "password": (250, 220), "button": (250, 320)}


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>")


@dataclass
class SiteState:
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, form) of each POST
    private_target: str = ""  # where /away redirects (an address the guard refuses)


class TestSite(BackgroundServer):
    """The site at ``base_url``; what forms it received is in ``state.received``."""

    __test__ = False

    def __init__(self) -> None:
        self.state = SiteState()
        super().__init__(
            Starlette(
                routes=[
                    Route("/login", self._login_form, methods=["GET"]),
                    Route("/login", self._login, methods=["POST"]),
                    Route("/signin", self._signin_form),
                    Route("/pointer", self._pointer),
                    Route("/account", self._account),
                    Route("/apply/1", self._apply_first, methods=["GET", "POST"]),
                    Route("/apply/2", self._apply_second, methods=["GET", "POST"]),
                    Route("/files", self._files),
                    Route("/files/report.txt", self._report),
                    Route("/remember", self._remember),
                    Route("/whoami", self._whoami),
                    Route("/away", self._away),
                ]
            )
        )

    def reset(self) -> None:
        self.state.received.clear()

    async def _form(self, request: Request) -> dict[str, Any]:
        form = dict(await request.form())
        self.state.received.append((request.url.path, form))
        return form

    async def _login_form(self, request: Request) -> Response:
        return page(
            "Sign in",
            "<h1>Sign in</h1><form method=post action=/login>"
            "<label>Username <input name=username></label>"
            "<label>Password <input type=password name=password></label>"
            "<button>Sign in</button></form>",
        )

    async def _signin_form(self, request: Request) -> Response:
        """The login form laid out at fixed points of the screen, for models that click at coordinates:
        the centres of Username, Password and the button are SIGNIN_FIELDS."""
        return page(
            "Sign in",
            f"<style>{FIXED_STYLE}</style><form method=post action=/login>"
            "<input id=u name=username aria-label=Username>"
            "<input id=p type=password name=password aria-label=Password>"
            "<button id=b>Sign in</button></form>",
        )

    async def _pointer(self, request: Request) -> Response:
        """A tall page whose fixed button and keys write what they got into the page (#log)."""
        return page(
            "Pointer",
            f"<style>{FIXED_STYLE}#log{{position:fixed;left:100px;top:400px}}</style>"
            "<div style='height:4000px'></div><button id=b>Press</button><p id=log></p>"
            "<script>const log=[];const b=document.getElementById('b');"
            "const show=(what)=>{log.push(what);document.getElementById('log').textContent=log.join(' ')};"
            "b.onclick=()=>show('click');b.ondblclick=()=>show('dblclick');"
            "b.oncontextmenu=(e)=>{e.preventDefault();show('contextmenu')};"
            "document.onkeydown=(e)=>{if(e.ctrlKey&&e.key==='k')show('ctrl+k')};"
            "window.onscroll=()=>{document.title='Pointer at '+Math.round(window.scrollY)};</script>",
        )

    async def _login(self, request: Request) -> Response:
        form = await self._form(request)
        if form.get("password") != "open sesame":
            return page("Sign in", "<p>Wrong password.</p><a href=/login>Try again</a>")
        answer = RedirectResponse("/account", status_code=303)
        answer.set_cookie("session", str(form.get("username")))
        return answer

    async def _account(self, request: Request) -> Response:
        user = request.cookies.get("session")
        if not user:
            return page("Account", "<p>Please sign in.</p>")
        return page("Account", f"<h1>Welcome, {html.escape(user)}</h1><p>Your balance is 42 coins.</p>")

    async def _apply_first(self, request: Request) -> Response:
        if request.method == "POST":
            form = await self._form(request)
            answer = RedirectResponse("/apply/2", status_code=303)
            answer.set_cookie("applicant", f"{form.get('name')}|{form.get('plan')}")
            return answer
        return page(
            "Apply: step 1",
            "<h1>Step 1 of 2</h1><form method=post>"
            "<label>Full name <input name=name></label>"
            "<label>Plan <select name=plan><option value=basic>Basic</option>"
            "<option value=team>Team</option></select></label>"
            "<button>Next</button></form>",
        )

    async def _apply_second(self, request: Request) -> Response:
        applicant = request.cookies.get("applicant", "")
        if request.method == "POST":
            form = await self._form(request)
            return page(
                "Applied",
                f"<h1>Thank you</h1><p>Application {html.escape(applicant)} "
                f"with email {html.escape(str(form.get('email')))} received.</p>",
            )
        return page(
            "Apply: step 2",
            f"<h1>Step 2 of 2</h1><p>Applying as {html.escape(applicant)}</p><form method=post>"
            "<label>Email <input type=email name=email></label><button>Send</button></form>",
        )

    async def _files(self, request: Request) -> Response:
        return page("Files", "<h1>Files</h1><a href=/files/report.txt download>Quarterly report</a>")

    async def _report(self, request: Request) -> Response:
        return Response(
            REPORT,
            media_type="text/plain",
            headers={"Content-Disposition": 'attachment; filename="report.txt"'},
        )

    async def _remember(self, request: Request) -> Response:
        value = request.query_params.get("v", "")
        answer = page("Remembered", f"<p>Remembered {html.escape(value)}</p>")
        answer.set_cookie("who", value)
        return answer

    async def _whoami(self, request: Request) -> Response:
        return page("Who", f"<p>Cookie who={html.escape(request.cookies.get('who', 'nobody'))}</p>")

    async def _away(self, request: Request) -> Response:
        return RedirectResponse(self.state.private_target, status_code=302)


class PrivateService(BackgroundServer):
    """A service on another loopback address (127.0.0.2) that agents must never reach: it counts hits."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        super().__init__(Starlette(routes=[Route("/secret", self._secret)]), host="127.0.0.2")

    async def _secret(self, request: Request) -> Response:
        self.hits.append(str(request.url))
        return page("Secret", "<p>internal credentials</p>")
