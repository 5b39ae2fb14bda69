"""A local Stripe API for what localstripe lacks, speaking Stripe's wire format to the official SDK.

Covers Customers, Products, Prices (one-time and recurring), Checkout Sessions (``payment`` and
``subscription`` mode, trials through ``subscription_data[trial_period_days]``), Billing Portal sessions,
Subscriptions (trialing / active / past_due / canceled, periods on the items as recent API versions have
them and at the top level as older ones did), Invoices, PaymentIntents and Events. Subscription updates
follow Stripe's item rules: ``items[0][id]`` with ``items[0][price]`` changes that item's price (proration
is ignored), an item without ``id`` is added.

Requests are form-encoded with Stripe's bracket notation and need ``Authorization: Bearer sk_test_...``;
unknown parameters, missing ones and unknown ids answer Stripe-shaped errors. Every request is recorded.
``Idempotency-Key`` replays the first answer, as Stripe does.

Time does not pass by itself: test helpers (``complete``, ``advance_trial_end``, ``fail_next_invoice``,
``pay_invoice``, ``advance_period_end`` ...) do what Stripe would do at that moment and return the Event
objects it would send. With webhook endpoints registered (``add_webhook_endpoint``) every event is also
posted to them, signed: at once for helpers, in the background after the answer for API calls.

Hosted pages exist for browser tests: the Checkout ``url`` shows a pay button that completes the session
and redirects to ``success_url``; the portal ``url`` lists subscriptions with a cancel button.
"""

from __future__ import annotations

import calendar
import copy
import html
import re
import secrets
import string
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import stripe
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer
from tests.fakes.stripe_signing import new_webhook_secret, sign_event

JSON = dict[str, Any]
# Events carry the version the SDK is pinned to, as they would for an account on that version.
API_VERSION: str = stripe.api_version
TEST_API_KEY = "sk_test_hutch_fake"
DAY = 86_400

# Parameters each endpoint accepts: None is any value, a dict is a nested hash, a list holds the schema
# of its elements. Anything else is refused the way Stripe refuses it ("Received unknown parameter").


def _fields(names: str, **nested: Any) -> JSON:
    return {**dict.fromkeys(names.split()), **nested}


def _listing(filters: str) -> JSON:
    return _fields(f"limit starting_after ending_before created expand {filters}")


_CUSTOMER = _fields(
    "email name description phone metadata address shipping preferred_locales invoice_settings "
    "payment_method tax_exempt expand"
)
_PRODUCT = _fields(
    "name active description metadata images statement_descriptor tax_code unit_label url "
    "marketing_features expand"
)
_PRICE_CREATE = _fields(
    "currency product unit_amount lookup_key transfer_lookup_key nickname metadata active tax_behavior "
    "billing_scheme expand",
    product_data=_fields("name metadata active statement_descriptor"),
    recurring=_fields("interval interval_count usage_type trial_period_days"),
)
_PRICE_UPDATE = _fields("active metadata nickname lookup_key transfer_lookup_key tax_behavior expand")
_CHECKOUT_CREATE = _fields(
    "mode success_url cancel_url return_url customer customer_email customer_creation customer_update "
    "client_reference_id metadata payment_method_types payment_method_collection allow_promotion_codes "
    "discounts billing_address_collection phone_number_collection tax_id_collection automatic_tax "
    "consent_collection custom_text custom_fields invoice_creation saved_payment_method_options locale "
    "expires_at ui_mode submit_type currency expand",
    line_items=[_fields("price quantity adjustable_quantity tax_rates")],
    subscription_data=_fields(
        "trial_period_days trial_end trial_settings metadata description billing_cycle_anchor "
        "proration_behavior default_tax_rates"
    ),
    payment_intent_data=_fields(
        "metadata description receipt_email setup_future_usage statement_descriptor "
        "statement_descriptor_suffix capture_method"
    ),
)
_PORTAL_CREATE = _fields("customer return_url configuration flow_data locale on_behalf_of expand")
_SUBSCRIPTION_COMMON = _fields(
    "metadata description cancel_at_period_end cancel_at trial_end default_payment_method payment_behavior "
    "proration_behavior collection_method days_until_due off_session payment_settings automatic_tax "
    "discounts default_tax_rates expand",
    items=[_fields("id price quantity metadata deleted")],
)
_SUBSCRIPTION_CREATE = {
    **_SUBSCRIPTION_COMMON,
    **_fields("customer trial_period_days trial_settings billing_cycle_anchor"),
}
_SUBSCRIPTION_UPDATE = {
    **_SUBSCRIPTION_COMMON,
    **_fields("proration_date cancellation_details pause_collection"),
}
_SUBSCRIPTION_CANCEL = _fields("invoice_now prorate cancellation_details expand")
_INTENT_CREATE = _fields(
    "amount currency customer description metadata payment_method payment_method_types "
    "automatic_payment_methods confirm off_session receipt_email setup_future_usage statement_descriptor "
    "statement_descriptor_suffix capture_method return_url expand"
)
_INTENT_UPDATE = _fields("amount description metadata payment_method expand")
_INTENT_CONFIRM = _fields("payment_method return_url off_session expand")

# Test payment methods that Stripe declines; any other string succeeds.
DECLINED_PAYMENT_METHODS = frozenset({"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"})


class StripeError(Exception):
    """An error answered in Stripe's shape: ``{"error": {"type", "message", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        extra: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"error": {"type": type, "message": message, **(extra or {})}}
        if param is not None:
            self.body["error"]["param"] = param
        if code is not None:
            self.body["error"]["code"] = code
            self.body["error"]["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str, status: int = 400) -> StripeError:
    return StripeError(status, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")


def invalid(param: str | None, message: str, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


# --- request parsing ------------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(body: str) -> JSON:
    """Stripe's bracket notation as nested values: ``a[b][0][c]=v`` → ``{"a": {"b": [{"c": "v"}]}}``.

    ``a[]=x`` appends, and a hash whose keys are all numbers becomes a list in index order.
    """
    root: JSON = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))] if match else [key]
        node: JSON = root
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(
                    _bracketed(parts[: depth + 1]), f"Invalid hash: {_bracketed(parts[: depth + 1])}"
                )
            node = child
        last = parts[-1] if parts[-1] != "" else str(len(node))
        if isinstance(node.get(last), dict):
            raise invalid(_bracketed(parts), f"Invalid hash: {_bracketed(parts)}")
        node[last] = value
    result = _lists(root)
    assert isinstance(result, dict)
    return result


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _bracketed(parts: list[str]) -> str:
    return parts[0] + "".join(f"[{part}]" for part in parts[1:])


def _check(params: Any, schema: Any, prefix: str = "") -> None:
    """Refuse parameters the schema does not know, naming them as Stripe does."""
    if schema is None:
        return
    if isinstance(schema, list):
        if isinstance(params, list):
            for index, item in enumerate(params):
                _check(item, schema[0], f"{prefix}[{index}]")
        elif params != "":
            raise invalid(prefix, f"Invalid array: {prefix}")
        return
    if not isinstance(params, dict):
        if params == "":  # an empty string unsets a hash
            return
        raise invalid(prefix, f"Invalid object: {prefix}")
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in schema:
            raise invalid(name, f"Received unknown parameter: {name}", code="parameter_unknown")
        _check(value, schema[key], name)


def _int(value: Any, param: str, minimum: int | None = None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise invalid(param, f"Invalid integer: {value}", code="parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise invalid(param, f"This value must be greater than or equal to {minimum}.")
    return number


def _bool(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid(param, f"Invalid boolean: {value}")


def _str(value: Any, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(param, f"Invalid string: {value}")
    return value


def _metadata(value: Any, current: JSON | None = None, param: str = "metadata") -> JSON:
    """Stripe's metadata rules: keys merge, an empty value deletes a key, ``metadata=""`` clears all."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(param, f"Invalid hash: {param}")
    merged = dict(current or {})
    for key, item in value.items():
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = str(item)
    return merged


def _new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def add_interval(timestamp: int, interval: str, count: int = 1) -> int:
    """``timestamp`` moved by a billing interval; months keep the day, clamped to the month's end."""
    if interval == "day":
        return timestamp + count * DAY
    if interval == "week":
        return timestamp + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    moment = datetime.fromtimestamp(timestamp, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _changes(before: JSON, after: JSON) -> JSON:
    """``previous_attributes`` of an ``*.updated`` event: the old values of what changed."""
    return {key: before.get(key) for key in after if before.get(key) != after.get(key)}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    params: JSON


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str
    events: frozenset[str] | None  # None: every event


@dataclass(frozen=True)
class Delivery:
    url: str
    event_id: str
    event_type: str
    status: int | None
    error: str | None = None


@dataclass(frozen=True)
class ScriptedError:
    """Answer the next matching request with this error instead of serving it."""

    status: int = 500
    message: str = "An unknown error occurred"
    type: str = "api_error"
    code: str | None = None
    method: str | None = None
    path: str | None = None  # a prefix of the request path


class FakeStripe(BackgroundServer):
    """A Stripe API on a loopback port; point ``StripeClient(base_addresses={"api": base_url})`` at it."""

    def __init__(self, api_key: str | None = None) -> None:
        # With api_key set only that key is accepted; otherwise any test-mode secret key is.
        self.api_key = api_key
        self._lock = threading.RLock()
        self._objects: dict[str, JSON] = {}
        self._requests: list[RecordedRequest] = []
        self._endpoints: list[WebhookEndpoint] = []
        self._deliveries: list[Delivery] = []
        self._script: list[ScriptedError] = []
        self._idempotent: dict[str, tuple[str, str, JSON, int, JSON]] = {}
        self._emitted: list[JSON] = []
        self._request_ref: JSON = {"id": None, "idempotency_key": None}
        self._generation = 0  # bumped by reset
        super().__init__(self._build_app())

    # --- test API: setup and inspection -----------------------------------------------------------

    def client(self, api_key: str | None = None) -> stripe.StripeClient:
        """An official SDK client for this server; no retries, so failures show at once."""
        key = api_key or self.api_key or TEST_API_KEY
        return stripe.StripeClient(key, base_addresses={"api": self.base_url}, max_network_retries=0)

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._objects.clear()
            self._requests.clear()
            self._endpoints.clear()
            self._deliveries.clear()
            self._script.clear()
            self._idempotent.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._requests)

    def find_requests(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self._requests if r.method == method.upper() and r.path == path]

    @property
    def events(self) -> list[JSON]:
        """Every event so far, oldest first."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._objects.values() if o["object"] == "event"]

    def get(self, object_id: str) -> JSON:
        """The current state of any object, as the API would return it."""
        with self._lock:
            return self._public(self._objects[object_id])

    def script_error(self, error: ScriptedError) -> None:
        self._script.append(error)

    def add_webhook_endpoint(
        self, url: str, secret: str | None = None, events: list[str] | None = None
    ) -> str:
        """Post every event (or those of ``events``) to ``url``, signed; returns the signing secret."""
        secret = secret or new_webhook_secret()
        self._endpoints.append(WebhookEndpoint(url, secret, frozenset(events) if events else None))
        return secret

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self._deliveries)

    def deliver(self, events: list[JSON]) -> list[Delivery]:
        """Post ``events`` to the registered endpoints now, one request each, as Stripe does."""
        done: list[Delivery] = []
        with httpx.Client(timeout=10) as http:
            for endpoint, event in self._targets(events):
                signed = sign_event(event, endpoint.secret)
                try:
                    response = http.post(endpoint.url, content=signed.body, headers=signed.headers)
                    done.append(Delivery(endpoint.url, event["id"], event["type"], response.status_code))
                except httpx.HTTPError as exc:
                    done.append(Delivery(endpoint.url, event["id"], event["type"], None, repr(exc)))
        self._deliveries.extend(done)
        return done

    async def _deliver_async(self, targets: list[tuple[WebhookEndpoint, JSON]], generation: int) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            for endpoint, event in targets:
                signed = sign_event(event, endpoint.secret)
                try:
                    response = await http.post(endpoint.url, content=signed.body, headers=signed.headers)
                    delivery = Delivery(endpoint.url, event["id"], event["type"], response.status_code)
                except httpx.HTTPError as exc:
                    delivery = Delivery(endpoint.url, event["id"], event["type"], None, repr(exc))
                # A delivery still running when a test resets the fake belongs to the previous test.
                if generation == self._generation:
                    self._deliveries.append(delivery)

    def _targets(self, events: list[JSON]) -> list[tuple[WebhookEndpoint, JSON]]:
        return [
            (endpoint, event)
            for event in events
            for endpoint in self._endpoints
            if endpoint.events is None or event["type"] in endpoint.events
        ]

    # --- test API: what Stripe does when time passes or the customer acts -------------------------

    def complete(self, session_id: str) -> list[JSON]:
        """The customer pays (or starts the trial) on the Checkout page."""
        return self._helper(lambda: self._complete_session(session_id))

    def expire(self, session_id: str) -> list[JSON]:
        """The Checkout Session's 24 hours run out."""
        return self._helper(lambda: self._expire_session(session_id))

    def advance_trial_end(self, subscription_id: str) -> list[JSON]:
        """The trial ends now and the first invoice is paid: trialing → active (or canceled if so set)."""

        def act() -> None:
            subscription = self._subscription(subscription_id)
            if subscription["status"] != "trialing":
                raise ValueError(f"{subscription_id} is {subscription['status']}, not trialing")
            self._period_end(subscription, succeed=True)

        return self._helper(act)

    def fail_next_invoice(self, subscription_id: str) -> list[JSON]:
        """The next charge fails: the trial's end or renewal (→ past_due), or a retry of the open invoice."""

        def act() -> None:
            subscription = self._subscription(subscription_id)
            open_invoice = self._open_invoice(subscription)
            if open_invoice is not None:
                self._fail_invoice(open_invoice)
            else:
                self._period_end(subscription, succeed=False)

        return self._helper(act)

    def pay_invoice(self, subscription_id: str) -> list[JSON]:
        """The open invoice is paid (past_due → active); with none open, the next period is billed, paid."""

        def act() -> None:
            subscription = self._subscription(subscription_id)
            open_invoice = self._open_invoice(subscription)
            if open_invoice is not None:
                before = copy.deepcopy(subscription)
                self._pay_invoice(open_invoice)
                subscription["status"] = "active"
                self._emit_updated(subscription, before)
            else:
                self._period_end(subscription, succeed=True)

        return self._helper(act)

    def advance_period_end(self, subscription_id: str) -> list[JSON]:
        """The current period (or trial) ends: a subscription set to cancel ends, any other renews, paid."""
        return self._helper(lambda: self._period_end(self._subscription(subscription_id), succeed=True))

    def trial_will_end(self, subscription_id: str) -> list[JSON]:
        """Three days before the trial ends Stripe sends a reminder event; nothing changes."""
        return self._helper(
            lambda: self._emit("customer.subscription.trial_will_end", self._subscription(subscription_id))
        )

    def cancel_for_nonpayment(self, subscription_id: str) -> list[JSON]:
        """Retries are exhausted and Stripe cancels the subscription (the default dunning setting)."""
        return self._helper(
            lambda: self._end_subscription(self._subscription(subscription_id), "payment_failed")
        )

    def succeed_payment_intent(self, payment_intent_id: str) -> list[JSON]:
        """The customer confirms a PaymentIntent with a working card."""

        def act() -> None:
            intent = self._get("payment_intent", payment_intent_id, "id")
            self._confirm_intent(intent, intent["payment_method"] or "pm_card_visa")

        return self._helper(act)

    def _helper(self, action: Callable[[], object], deliver: bool = True) -> list[JSON]:
        with self._lock:
            self._emitted = []
            self._request_ref = {"id": None, "idempotency_key": None}
            try:
                action()
            finally:
                events, self._emitted = self._emitted, []
        if deliver and self._endpoints:
            self.deliver(events)
        return events

    # --- HTTP plumbing ----------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        api: list[tuple[str, str, Callable[[dict[str, str], JSON], JSON]]] = [
            ("POST", "/v1/customers", self._customer_create),
            ("GET", "/v1/customers", self._customer_list),
            ("GET", "/v1/customers/{id}", self._customer_retrieve),
            ("POST", "/v1/customers/{id}", self._customer_update),
            ("POST", "/v1/products", self._product_create),
            ("GET", "/v1/products", self._product_list),
            ("GET", "/v1/products/{id}", self._product_retrieve),
            ("POST", "/v1/products/{id}", self._product_update),
            ("POST", "/v1/prices", self._price_create),
            ("GET", "/v1/prices", self._price_list),
            ("GET", "/v1/prices/{id}", self._price_retrieve),
            ("POST", "/v1/prices/{id}", self._price_update),
            ("POST", "/v1/checkout/sessions", self._session_create),
            ("GET", "/v1/checkout/sessions", self._session_list),
            ("GET", "/v1/checkout/sessions/{id}", self._session_retrieve),
            ("GET", "/v1/checkout/sessions/{id}/line_items", self._session_line_items),
            ("POST", "/v1/checkout/sessions/{id}/expire", self._session_expire),
            ("POST", "/v1/billing_portal/sessions", self._portal_create),
            ("POST", "/v1/subscriptions", self._subscription_create),
            ("GET", "/v1/subscriptions", self._subscription_list),
            ("GET", "/v1/subscriptions/{id}", self._subscription_retrieve),
            ("POST", "/v1/subscriptions/{id}", self._subscription_update),
            ("DELETE", "/v1/subscriptions/{id}", self._subscription_cancel),
            ("GET", "/v1/invoices", self._invoice_list),
            ("GET", "/v1/invoices/{id}", self._invoice_retrieve),
            ("POST", "/v1/payment_intents", self._intent_create),
            ("GET", "/v1/payment_intents/{id}", self._intent_retrieve),
            ("POST", "/v1/payment_intents/{id}", self._intent_update),
            ("POST", "/v1/payment_intents/{id}/confirm", self._intent_confirm),
            ("POST", "/v1/payment_intents/{id}/cancel", self._intent_cancel),
            ("GET", "/v1/events", self._event_list),
            ("GET", "/v1/events/{id}", self._event_retrieve),
        ]
        routes = [Route(path, self._endpoint(handler), methods=[method]) for method, path, handler in api]
        routes += [
            Route("/c/pay/{id}", self._checkout_page, methods=["GET"]),
            Route("/c/pay/{id}", self._checkout_pay, methods=["POST"]),
            Route("/p/session/{id}", self._portal_page, methods=["GET"]),
            Route("/p/session/{id}/cancel/{subscription}", self._portal_cancel, methods=["POST"]),
            Route("/{path:path}", self._endpoint(self._unknown_url), methods=["GET", "POST", "DELETE"]),
        ]
        return Starlette(routes=routes)

    def _endpoint(
        self, handler: Callable[[dict[str, str], JSON], JSON]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            method, path = request.method, request.url.path
            raw = (await request.body()).decode() if method == "POST" else request.url.query
            request_id = _new_id("req_", 14)
            headers = {"Request-Id": request_id, "Stripe-Version": request.headers.get("stripe-version", "")}
            try:
                params = parse_form(raw)
            except StripeError as error:
                return JSONResponse(error.body, error.status, headers=headers)
            self._requests.append(RecordedRequest(method, path, dict(request.headers), params))
            denied = self._authenticate(request.headers.get("authorization", ""))
            if denied is not None:
                return JSONResponse(denied.body, denied.status, headers=headers)
            scripted = self._take_scripted(method, path)
            if scripted is not None:
                body = {"error": {"type": scripted.type, "message": scripted.message}}
                if scripted.code:
                    body["error"]["code"] = scripted.code
                return JSONResponse(body, scripted.status, headers=headers)
            key = request.headers.get("idempotency-key") if method == "POST" else None
            if key is not None and key in self._idempotent:
                return self._replay(key, method, path, params, headers)
            with self._lock:
                self._emitted = []
                self._request_ref = {"id": request_id, "idempotency_key": key}
                try:
                    expand = params.get("expand") or []
                    path_params = {**request.path_params, "_method": method}
                    result = self._expand(handler(path_params, params), expand)
                    status = 200
                except StripeError as error:
                    result, status = error.body, error.status
                events, self._emitted = self._emitted, []
                if key is not None:
                    self._idempotent[key] = (method, path, params, status, result)
                # Like Stripe, webhooks go out after the answer, to the endpoints known at the time.
                targets, generation = self._targets(events), self._generation
            background = BackgroundTask(self._deliver_async, targets, generation) if targets else None
            return JSONResponse(result, status, headers=headers, background=background)

        return endpoint

    def _authenticate(self, authorization: str) -> StripeError | None:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        accepted = key == self.api_key if self.api_key else key.startswith(("sk_test_", "rk_test_"))
        if not accepted:
            return StripeError(
                401, f"Invalid API Key provided: {key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}"
            )
        return None

    def _take_scripted(self, method: str, path: str) -> ScriptedError | None:
        for index, scripted in enumerate(self._script):
            if (scripted.method is None or scripted.method.upper() == method) and (
                scripted.path is None or path.startswith(scripted.path)
            ):
                return self._script.pop(index)
        return None

    def _replay(self, key: str, method: str, path: str, params: JSON, headers: dict[str, str]) -> Response:
        first_method, first_path, first_params, status, result = self._idempotent[key]
        if (first_method, first_path, first_params) != (method, path, params):
            error = StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
            return JSONResponse(error.body, error.status, headers=headers)
        return JSONResponse(result, status, headers={**headers, "Idempotent-Replayed": "true"})

    def _unknown_url(self, path: dict[str, str], params: JSON) -> JSON:
        raise StripeError(
            404,
            f"Unrecognized request URL ({path['_method']}: /{path['path']}). "
            "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    # --- storage, events, expansion ---------------------------------------------------------------

    def _store(self, obj: JSON) -> JSON:
        self._objects[obj["id"]] = obj
        return obj

    def _get(self, kind: str, object_id: Any, param: str, status: int = 400) -> JSON:
        obj = self._objects.get(object_id) if isinstance(object_id, str) else None
        if obj is None or obj["object"] != kind:
            raise no_such(kind, str(object_id), param, status)
        return obj

    def _retrieve(self, kind: str, object_id: str) -> JSON:
        return self._public(self._get(kind, object_id, "id", status=404))

    @staticmethod
    def _public(obj: JSON) -> JSON:
        """A copy without the private fields (named ``_...``) the fake keeps next to Stripe's."""
        return {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}

    def _emit(self, event_type: str, obj: JSON, previous: JSON | None = None) -> JSON:
        data: JSON = {"object": self._public(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event = self._store(
            {
                "id": _new_id("evt_"),
                "object": "event",
                "api_version": API_VERSION,
                "created": int(time.time()),
                "data": data,
                "livemode": False,
                "pending_webhooks": len(self._endpoints),
                "request": dict(self._request_ref),
                "type": event_type,
            }
        )
        self._emitted.append(copy.deepcopy(event))
        return event

    def _emit_updated(self, obj: JSON, before: JSON) -> None:
        changes = _changes(self._public(before), self._public(obj))
        if changes:
            self._emit(f"{_event_prefix(obj)}.updated", obj, changes)

    def _list(self, url: str, objects: list[JSON], params: JSON) -> JSON:
        """A page of ``objects`` (oldest first in storage), newest first as Stripe lists them."""
        limit = _int(params.get("limit", 10), "limit", minimum=1)
        if limit > 100:
            raise invalid("limit", "This value must be less than or equal to 100.")
        ordered = list(reversed(objects))
        ids = [o["id"] for o in ordered]
        for cursor in ("starting_after", "ending_before"):
            if cursor in params and params[cursor] not in ids:
                raise invalid(cursor, f"No such object: '{params[cursor]}'", code="resource_missing")
        if "ending_before" in params:
            # The page just before the cursor, still newest first.
            before = ordered[: ids.index(params["ending_before"])]
            page, has_more = before[-limit:], len(before) > limit
        else:
            after = (
                ordered[ids.index(params["starting_after"]) + 1 :] if "starting_after" in params else ordered
            )
            page, has_more = after[:limit], len(after) > limit
        return {"object": "list", "data": [self._public(o) for o in page], "has_more": has_more, "url": url}

    def _all(self, kind: str) -> list[JSON]:
        return [o for o in self._objects.values() if o["object"] == kind]

    def _expand(self, result: JSON, paths: Any) -> JSON:
        if not isinstance(paths, list):
            raise invalid("expand", "Invalid array: expand")
        for index, path in enumerate(paths):
            self._expand_path(result, str(path).split("."), f"expand[{index}]", str(path))
        return result

    def _expand_path(self, obj: Any, parts: list[str], param: str, full: str) -> None:
        if not parts or not isinstance(obj, dict):
            return
        head, rest = parts[0], parts[1:]
        if head == "data" and obj.get("object") == "list":
            for item in obj["data"]:
                self._expand_path(item, rest, param, full)
            return
        if head == "line_items" and obj.get("object") == "checkout.session":
            obj["line_items"] = self._line_items_list(self._objects[obj["id"]], {})
        elif head not in obj:
            raise invalid(param, f"This property cannot be expanded ({full}).")
        elif isinstance(obj[head], str):
            if obj[head] not in self._objects:
                raise invalid(param, f"This property cannot be expanded ({full}).")
            obj[head] = self._public(self._objects[obj[head]])
        self._expand_path(obj[head], rest, param, full)

    # --- customers, products, prices --------------------------------------------------------------

    def _customer_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _CUSTOMER)
        return self._public(self._new_customer(params))

    def _new_customer(self, params: JSON) -> JSON:
        customer = self._store(
            {
                "id": _new_id("cus_", 14),
                "object": "customer",
                "address": params.get("address") or None,
                "balance": 0,
                "created": int(time.time()),
                "currency": None,
                "default_source": None,
                "delinquent": False,
                "description": _str(params.get("description"), "description"),
                "discount": None,
                "email": _str(params.get("email"), "email"),
                "invoice_prefix": "".join(secrets.choice(string.ascii_uppercase) for _ in range(8)),
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "livemode": False,
                "metadata": _metadata(params.get("metadata", {})),
                "name": _str(params.get("name"), "name"),
                "next_invoice_sequence": 1,
                "phone": _str(params.get("phone"), "phone"),
                "preferred_locales": params.get("preferred_locales") or [],
                "shipping": None,
                "tax_exempt": params.get("tax_exempt") or "none",
                "test_clock": None,
            }
        )
        self._emit("customer.created", customer)
        return customer

    def _customer_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("customer", path["id"])

    def _customer_update(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _CUSTOMER)
        customer = self._get("customer", path["id"], "id", status=404)
        before = copy.deepcopy(customer)
        for field in ("email", "name", "description", "phone"):
            if field in params:
                customer[field] = _str(params[field], field)
        if "metadata" in params:
            customer["metadata"] = _metadata(params["metadata"], customer["metadata"])
        if "address" in params:
            customer["address"] = params["address"] or None
        if "preferred_locales" in params:
            customer["preferred_locales"] = params["preferred_locales"] or []
        settings = params.get("invoice_settings")
        if isinstance(settings, dict) and "default_payment_method" in settings:
            customer["invoice_settings"]["default_payment_method"] = (
                settings["default_payment_method"] or None
            )
        self._emit_updated(customer, before)
        return self._public(customer)

    def _customer_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _listing("email"))
        customers = self._all("customer")
        if "email" in params:
            customers = [c for c in customers if c["email"] == params["email"]]
        return self._list("/v1/customers", customers, params)

    def _product_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, {**_PRODUCT, "id": None})
        if not params.get("name"):
            raise missing("name")
        return self._public(self._new_product(params))

    def _new_product(self, params: JSON) -> JSON:
        product_id = params.get("id") or _new_id("prod_", 14)
        if product_id in self._objects:
            raise invalid("id", "Product already exists.", code="resource_already_exists")
        now = int(time.time())
        product = self._store(
            {
                "id": product_id,
                "object": "product",
                "active": _bool(params.get("active", True), "active"),
                "created": now,
                "default_price": None,
                "description": _str(params.get("description"), "description"),
                "images": params.get("images") or [],
                "livemode": False,
                "marketing_features": [],
                "metadata": _metadata(params.get("metadata", {})),
                "name": params["name"],
                "package_dimensions": None,
                "shippable": None,
                "statement_descriptor": params.get("statement_descriptor"),
                "tax_code": None,
                "type": "service",
                "unit_label": params.get("unit_label"),
                "updated": now,
                "url": params.get("url"),
            }
        )
        self._emit("product.created", product)
        return product

    def _product_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("product", path["id"])

    def _product_update(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _PRODUCT)
        product = self._get("product", path["id"], "id", status=404)
        before = copy.deepcopy(product)
        if "name" in params:
            product["name"] = params["name"]
        if "description" in params:
            product["description"] = _str(params["description"], "description")
        if "active" in params:
            product["active"] = _bool(params["active"], "active")
        if "metadata" in params:
            product["metadata"] = _metadata(params["metadata"], product["metadata"])
        product["updated"] = int(time.time())
        self._emit_updated(product, before)
        return self._public(product)

    def _product_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _listing("active ids"))
        products = self._all("product")
        if "active" in params:
            products = [p for p in products if p["active"] == _bool(params["active"], "active")]
        if "ids" in params:
            products = [p for p in products if p["id"] in params["ids"]]
        return self._list("/v1/products", products, params)

    def _price_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _PRICE_CREATE)
        currency = _str(params.get("currency"), "currency")
        if currency is None:
            raise missing("currency")
        if "product" in params and "product_data" in params:
            raise invalid("product", "You may only specify one of these parameters: product, product_data.")
        if "product_data" in params:
            if not params["product_data"].get("name"):
                raise missing("product_data[name]")
            product_id = self._new_product(params["product_data"])["id"]
        elif "product" in params:
            product_id = self._get("product", params["product"], "product")["id"]
        else:
            raise invalid(
                "product", "You must specify either `product` or `product_data` when creating a price."
            )
        if "unit_amount" not in params:
            raise missing("unit_amount")
        unit_amount = _int(params["unit_amount"], "unit_amount", minimum=0)
        recurring = None
        if "recurring" in params:
            spec = params["recurring"]
            if not isinstance(spec, dict) or "interval" not in spec:
                raise missing("recurring[interval]")
            if spec["interval"] not in ("day", "week", "month", "year"):
                raise invalid(
                    "recurring[interval]",
                    "Invalid recurring[interval]: must be one of day, month, week, or year",
                )
            trial = spec.get("trial_period_days")
            recurring = {
                "interval": spec["interval"],
                "interval_count": _int(spec.get("interval_count", 1), "recurring[interval_count]", minimum=1),
                "meter": None,
                "trial_period_days": None if trial is None else _int(trial, "recurring[trial_period_days]"),
                "usage_type": spec.get("usage_type", "licensed"),
            }
        lookup_key = _str(params.get("lookup_key"), "lookup_key")
        if lookup_key is not None:
            holder = next((p for p in self._all("price") if p["lookup_key"] == lookup_key), None)
            if holder is not None:
                if not _bool(params.get("transfer_lookup_key", False), "transfer_lookup_key"):
                    raise invalid(
                        "lookup_key",
                        f"A price (`{holder['id']}`) already uses that lookup key.",
                        code="lookup_key_exists",
                    )
                holder["lookup_key"] = None
        price = self._store(
            {
                "id": _new_id("price_", 24),
                "object": "price",
                "active": _bool(params.get("active", True), "active"),
                "billing_scheme": "per_unit",
                "created": int(time.time()),
                "currency": currency.lower(),
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": lookup_key,
                "metadata": _metadata(params.get("metadata", {})),
                "nickname": _str(params.get("nickname"), "nickname"),
                "product": product_id,
                "recurring": recurring,
                "tax_behavior": params.get("tax_behavior", "unspecified"),
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "recurring" if recurring else "one_time",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            }
        )
        self._emit("price.created", price)
        return self._public(price)

    def _price_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("price", path["id"])

    def _price_update(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _PRICE_UPDATE)
        price = self._get("price", path["id"], "id", status=404)
        before = copy.deepcopy(price)
        if "active" in params:
            price["active"] = _bool(params["active"], "active")
        if "metadata" in params:
            price["metadata"] = _metadata(params["metadata"], price["metadata"])
        if "nickname" in params:
            price["nickname"] = _str(params["nickname"], "nickname")
        if "lookup_key" in params:
            key = _str(params["lookup_key"], "lookup_key")
            holder = next((p for p in self._all("price") if key and p["lookup_key"] == key), None)
            if holder is not None and holder is not price:
                if not _bool(params.get("transfer_lookup_key", False), "transfer_lookup_key"):
                    raise invalid("lookup_key", f"A price (`{holder['id']}`) already uses that lookup key.")
                holder["lookup_key"] = None
            price["lookup_key"] = key
        self._emit_updated(price, before)
        return self._public(price)

    def _price_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(
            params,
            _listing("active currency product type lookup_keys"),
        )
        prices = self._all("price")
        if "active" in params:
            prices = [p for p in prices if p["active"] == _bool(params["active"], "active")]
        for field in ("currency", "product", "type"):
            if field in params:
                prices = [p for p in prices if p[field] == params[field]]
        if "lookup_keys" in params:
            prices = [p for p in prices if p["lookup_key"] in params["lookup_keys"]]
        return self._list("/v1/prices", prices, params)

    def _price(self, price_id: Any, param: str) -> JSON:
        price = self._get("price", price_id, param)
        if not price["active"]:
            raise invalid(param, "The price specified is inactive. This field only accepts active prices.")
        return price

    # --- checkout sessions ------------------------------------------------------------------------

    def _session_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _CHECKOUT_CREATE)
        mode = params.get("mode")
        if mode is None:
            raise missing("mode")
        if mode not in ("payment", "subscription"):
            raise invalid("mode", f"Invalid mode: {mode}. This fake serves payment and subscription mode.")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise missing("line_items")
        line_items: list[JSON] = []
        for index, item in enumerate(items):
            param = f"line_items[{index}]"
            if "price" not in item:
                raise missing(f"{param}[price]")
            price = self._price(item["price"], f"{param}[price]")
            if "quantity" not in item:
                raise missing(f"{param}[quantity]")
            quantity = _int(item["quantity"], f"{param}[quantity]", minimum=1)
            if mode == "payment" and price["type"] == "recurring":
                raise invalid(
                    f"{param}[price]",
                    "You specified `payment` mode but passed a recurring price. Either switch to "
                    "`subscription` mode or use only one-time prices.",
                )
            line_items.append({"price": price["id"], "quantity": quantity})
        prices = [self._objects[i["price"]] for i in line_items]
        if mode == "subscription" and not any(p["type"] == "recurring" for p in prices):
            raise invalid(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode when using prices.",
            )
        if len({p["currency"] for p in prices}) > 1:
            raise invalid("line_items", "All prices on a Checkout Session must use the same currency.")
        if mode == "payment" and "subscription_data" in params:
            raise invalid("subscription_data", "You can not pass `subscription_data` in `payment` mode.")
        if mode == "subscription" and "payment_intent_data" in params:
            raise invalid(
                "payment_intent_data", "You can not pass `payment_intent_data` in `subscription` mode."
            )
        if mode == "subscription" and "customer_creation" in params:
            raise invalid("customer_creation", "`customer_creation` can only be used in `payment` mode.")
        if params.get("customer") and params.get("customer_email"):
            raise invalid(
                "customer", "You may only specify one of these parameters: customer, customer_email."
            )
        customer = params.get("customer") or None
        if customer is not None:
            self._get("customer", customer, "customer")
        subscription_data = params.get("subscription_data") or {}
        trial_days = subscription_data.get("trial_period_days")
        trial_days = (
            None if trial_days is None else _int(trial_days, "subscription_data[trial_period_days]", 1)
        )
        trial_end = subscription_data.get("trial_end")
        trial_end = None if trial_end is None else _int(trial_end, "subscription_data[trial_end]")
        if trial_days is not None and trial_end is not None:
            raise invalid(
                "subscription_data[trial_end]",
                "You may only specify one of these parameters: trial_end, trial_period_days.",
            )
        now = int(time.time())
        subtotal = sum(self._objects[i["price"]]["unit_amount"] * i["quantity"] for i in line_items)
        trialing = trial_days is not None or trial_end is not None
        # During a trial nothing is due today, except one-time prices added to the first invoice.
        due = (
            sum(
                p["unit_amount"] * i["quantity"]
                for p, i in zip(prices, line_items, strict=True)
                if p["type"] == "one_time"
            )
            if trialing
            else subtotal
        )
        session_id = _new_id("cs_test_", 58)
        session = self._store(
            {
                "id": session_id,
                "object": "checkout.session",
                "after_expiration": None,
                "allow_promotion_codes": params.get("allow_promotion_codes") == "true" or None,
                "amount_subtotal": subtotal if not trialing else due,
                "amount_total": due,
                "automatic_tax": {"enabled": False, "liability": None, "status": None},
                "billing_address_collection": params.get("billing_address_collection"),
                "cancel_url": params.get("cancel_url"),
                "client_reference_id": params.get("client_reference_id"),
                "client_secret": None,
                "consent": None,
                "created": now,
                "currency": prices[0]["currency"],
                "customer": customer,
                "customer_creation": (params.get("customer_creation") or "if_required")
                if mode == "payment"
                else None,
                "customer_details": None,
                "customer_email": params.get("customer_email"),
                "discounts": [],
                "expires_at": _int(params.get("expires_at", now + DAY), "expires_at"),
                "invoice": None,
                "livemode": False,
                "locale": params.get("locale"),
                "metadata": _metadata(params.get("metadata", {})),
                "mode": mode,
                "payment_intent": None,
                "payment_link": None,
                "payment_method_collection": "always" if mode == "subscription" else None,
                "payment_method_types": params.get("payment_method_types") or ["card"],
                "payment_status": "unpaid",
                "recovered_from": None,
                "setup_intent": None,
                "status": "open",
                "submit_type": params.get("submit_type"),
                "subscription": None,
                "success_url": params.get("success_url"),
                "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
                "ui_mode": params.get("ui_mode", "hosted"),
                "url": f"{self.base_url}/c/pay/{session_id}",
                "_line_items": line_items,
                "_trial_period_days": trial_days,
                "_trial_end": trial_end,
                "_subscription_metadata": _metadata(subscription_data.get("metadata", {})),
                "_subscription_description": subscription_data.get("description"),
                "_payment_intent_data": params.get("payment_intent_data") or {},
            }
        )
        return self._public(session)

    def _session_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("checkout.session", path["id"])

    def _session_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(
            params,
            _listing("customer subscription payment_intent status"),
        )
        sessions = self._all("checkout.session")
        for field in ("customer", "subscription", "payment_intent", "status"):
            if field in params:
                sessions = [s for s in sessions if s[field] == params[field]]
        return self._list("/v1/checkout/sessions", sessions, params)

    def _session_line_items(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _listing(""))
        session = self._get("checkout.session", path["id"], "id", status=404)
        return self._line_items_list(session, params)

    def _line_items_list(self, session: JSON, params: JSON) -> JSON:
        items: list[JSON] = []
        for item in session["_line_items"]:
            price = self._objects[item["price"]]
            amount = price["unit_amount"] * item["quantity"]
            items.append(
                {
                    "id": f"li_{session['id'][-20:]}{len(items)}",
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": price["currency"],
                    "description": self._objects[price["product"]]["name"],
                    "price": self._public(price),
                    "quantity": item["quantity"],
                }
            )
        items.reverse()  # _list pages newest first; line items keep their order
        return self._list(f"/v1/checkout/sessions/{session['id']}/line_items", items, params)

    def _session_expire(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _fields("expand"))
        session = self._get("checkout.session", path["id"], "id", status=404)
        if session["status"] != "open":
            raise invalid(
                None,
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session '
                f'has a status of "{session["status"]}".',
            )
        self._expire_session(session["id"])
        return self._public(session)

    def _expire_session(self, session_id: str) -> None:
        session = self._open_session(session_id)
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session)

    def _open_session(self, session_id: str) -> JSON:
        session = self._objects.get(session_id)
        if session is None or session["object"] != "checkout.session":
            raise KeyError(session_id)
        if session["status"] != "open":
            raise ValueError(f"checkout session {session_id} is {session['status']}, not open")
        return session

    def _complete_session(self, session_id: str) -> None:
        session = self._open_session(session_id)
        email = session["customer_email"]
        if session["customer"] is None and (
            session["mode"] == "subscription" or session["customer_creation"] == "always"
        ):
            session["customer"] = self._new_customer({"email": email or "customer@example.com"})["id"]
        if session["customer"] is not None:
            customer = self._objects[session["customer"]]
            email = customer["email"] or email
        session["customer_details"] = {
            "address": None,
            "email": email or "customer@example.com",
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        if session["mode"] == "subscription":
            trial_end = session["_trial_end"]
            if session["_trial_period_days"] is not None:
                trial_end = int(time.time()) + session["_trial_period_days"] * DAY
            subscription = self._new_subscription(
                session["customer"],
                [(self._objects[i["price"]], i["quantity"], {}) for i in session["_line_items"]],
                trial_end=trial_end,
                metadata=session["_subscription_metadata"],
                description=session["_subscription_description"],
            )
            session["subscription"] = subscription["id"]
            session["payment_status"] = (
                "no_payment_required" if trial_end and not session["amount_total"] else "paid"
            )
        else:
            data = session["_payment_intent_data"]
            intent = self._new_intent(
                amount=session["amount_total"],
                currency=session["currency"],
                customer=session["customer"],
                metadata=_metadata(data.get("metadata", {})),
                description=data.get("description"),
            )
            self._confirm_intent(intent, "pm_card_visa")
            session["payment_intent"] = intent["id"]
            session["payment_status"] = "paid"
        session.update(status="complete", url=None)
        self._emit("checkout.session.completed", session)

    # --- billing portal ---------------------------------------------------------------------------

    def _portal_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _PORTAL_CREATE)
        if "customer" not in params:
            raise missing("customer")
        customer = self._get("customer", params["customer"], "customer")
        session_id = _new_id("bps_", 24)
        portal = self._store(
            {
                "id": session_id,
                "object": "billing_portal.session",
                "configuration": params.get("configuration") or "bpc_hutch_default",
                "created": int(time.time()),
                "customer": customer["id"],
                "flow": None,
                "livemode": False,
                "locale": params.get("locale"),
                "on_behalf_of": None,
                "return_url": params.get("return_url"),
                "url": f"{self.base_url}/p/session/{session_id}",
            }
        )
        return self._public(portal)

    # --- subscriptions and invoices ---------------------------------------------------------------

    def _subscription(self, subscription_id: str) -> JSON:
        subscription = self._objects.get(subscription_id)
        if subscription is None or subscription["object"] != "subscription":
            raise KeyError(subscription_id)
        return subscription

    def _new_item(
        self, subscription_id: str, price: JSON, quantity: int, metadata: JSON, start: int, end: int
    ) -> JSON:
        return {
            "id": _new_id("si_", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": int(time.time()),
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": metadata,
            "plan": _plan_of(price),
            "price": self._public(price),
            "quantity": quantity,
            "subscription": subscription_id,
            "tax_rates": [],
        }

    def _new_subscription(
        self,
        customer_id: str,
        items: list[tuple[JSON, int, JSON]],
        *,
        trial_end: int | None,
        metadata: JSON,
        description: str | None = None,
        cancel_at_period_end: bool = False,
    ) -> JSON:
        now = int(time.time())
        recurring = [(p, q, m) for p, q, m in items if p["type"] == "recurring"]
        one_time = [(p, q) for p, q, _ in items if p["type"] == "one_time"]
        first = recurring[0][0]["recurring"]
        end = (
            trial_end
            if trial_end is not None
            else add_interval(now, first["interval"], first["interval_count"])
        )
        subscription_id = _new_id("sub_", 14)
        subscription: JSON = {
            "id": subscription_id,
            "object": "subscription",
            "application": None,
            "automatic_tax": {"enabled": False, "liability": None},
            "billing_cycle_anchor": end if trial_end is not None else now,
            "cancel_at": end if cancel_at_period_end else None,
            "cancel_at_period_end": cancel_at_period_end,
            "canceled_at": now if cancel_at_period_end else None,
            "cancellation_details": {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested" if cancel_at_period_end else None,
            },
            "collection_method": "charge_automatically",
            "created": now,
            "currency": recurring[0][0]["currency"],
            "current_period_end": end,
            "current_period_start": now,
            "customer": customer_id,
            "days_until_due": None,
            "default_payment_method": None,
            "description": description,
            "discounts": [],
            "ended_at": None,
            "items": {
                "object": "list",
                "data": [self._new_item(subscription_id, p, q, m, now, end) for p, q, m in recurring],
                "has_more": False,
                "total_count": len(recurring),
                "url": f"/v1/subscription_items?subscription={subscription_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": metadata,
            "pause_collection": None,
            "pending_update": None,
            "start_date": now,
            "status": "trialing" if trial_end is not None else "active",
            "test_clock": None,
            "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": now if trial_end is not None else None,
        }
        _legacy_plan_fields(subscription)
        self._store(subscription)
        # The first invoice: free during a trial (but for one-time prices), the first period otherwise.
        invoice = self._new_invoice(
            subscription,
            "subscription_create",
            period=(now, now),
            free=trial_end is not None,
            one_time=one_time,
        )
        subscription["latest_invoice"] = invoice["id"]
        self._emit("customer.subscription.created", subscription)
        self._emit("invoice.created", invoice)
        self._finalize_invoice(invoice)
        self._pay_invoice(invoice)
        return subscription

    def _new_invoice(
        self,
        subscription: JSON,
        billing_reason: str,
        *,
        period: tuple[int, int],
        free: bool = False,
        one_time: list[tuple[JSON, int]] | None = None,
    ) -> JSON:
        customer = self._objects[subscription["customer"]]
        invoice_id = _new_id("in_", 14)
        lines = []
        for item in subscription["items"]["data"]:
            price = item["price"]
            amount = 0 if free else price["unit_amount"] * item["quantity"]
            product = self._objects[price["product"]]["name"]
            lines.append(
                self._invoice_line(
                    invoice_id,
                    amount,
                    price,
                    item["quantity"],
                    f"{'Trial period for ' if free else ''}{item['quantity']} x {product}",
                    (item["current_period_start"], item["current_period_end"]),
                    subscription,
                    item["id"],
                )
            )
        for price, quantity in one_time or []:
            product = self._objects[price["product"]]["name"]
            lines.append(
                self._invoice_line(
                    invoice_id,
                    price["unit_amount"] * quantity,
                    self._public(price),
                    quantity,
                    f"{quantity} x {product}",
                    period,
                    subscription,
                    None,
                )
            )
        total = sum(line["amount"] for line in lines)
        now = int(time.time())
        invoice = self._store(
            {
                "id": invoice_id,
                "object": "invoice",
                "account_country": "US",
                "account_name": "Hutch (test)",
                "amount_due": total,
                "amount_paid": 0,
                "amount_remaining": total,
                "attempt_count": 0,
                "attempted": False,
                "auto_advance": True,
                "billing_reason": billing_reason,
                "collection_method": "charge_automatically",
                "created": now,
                "currency": subscription["currency"],
                "customer": customer["id"],
                "customer_email": customer["email"],
                "customer_name": customer["name"],
                "description": None,
                "discounts": [],
                "due_date": None,
                "effective_at": None,
                "hosted_invoice_url": None,
                "invoice_pdf": None,
                "lines": {
                    "object": "list",
                    "data": lines,
                    "has_more": False,
                    "total_count": len(lines),
                    "url": f"/v1/invoices/{invoice_id}/lines",
                },
                "livemode": False,
                "metadata": {},
                "next_payment_attempt": None,
                "number": None,
                "parent": {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(subscription["metadata"]),
                        "subscription": subscription["id"],
                    },
                },
                # Invoices of a subscription look back one period (Stripe's definition).
                "period_end": period[1],
                "period_start": period[0],
                "status": "draft",
                "status_transitions": {
                    "finalized_at": None,
                    "marked_uncollectible_at": None,
                    "paid_at": None,
                    "voided_at": None,
                },
                "subtotal": total,
                "total": total,
                # Top-level in API versions before 2025-03-31 (now under parent.subscription_details).
                "subscription": subscription["id"],
                "paid": False,
                "webhooks_delivered_at": None,
            }
        )
        return invoice

    def _invoice_line(
        self,
        invoice_id: str,
        amount: int,
        price: JSON,
        quantity: int,
        description: str,
        period: tuple[int, int],
        subscription: JSON,
        item_id: str | None,
    ) -> JSON:
        return {
            "id": _new_id("il_", 14),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": description,
            "invoice": invoice_id,
            "livemode": False,
            "metadata": {},
            "parent": {
                "type": "subscription_item_details" if item_id else "invoice_item_details",
                "subscription_item_details": {
                    "subscription": subscription["id"],
                    "subscription_item": item_id,
                    "proration": False,
                }
                if item_id
                else None,
            },
            "period": {"start": period[0], "end": period[1]},
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": price["unit_amount_decimal"],
            },
            "price": copy.deepcopy(price),
            "quantity": quantity,
        }

    def _finalize_invoice(self, invoice: JSON) -> None:
        now = int(time.time())
        customer = self._objects[invoice["customer"]]
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        invoice.update(
            status="open", effective_at=now, hosted_invoice_url=f"{self.base_url}/i/{invoice['id']}"
        )
        invoice["status_transitions"]["finalized_at"] = now
        self._emit("invoice.finalized", invoice)

    def _pay_invoice(self, invoice: JSON) -> None:
        now = int(time.time())
        invoice.update(
            status="paid",
            paid=True,
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            attempted=True,
            attempt_count=invoice["attempt_count"] + (1 if invoice["amount_due"] else 0),
            next_payment_attempt=None,
        )
        invoice["status_transitions"]["paid_at"] = now
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)

    def _fail_invoice(self, invoice: JSON) -> None:
        # Stripe's default Smart Retries try again a few days later.
        invoice.update(
            attempted=True,
            attempt_count=invoice["attempt_count"] + 1,
            next_payment_attempt=int(time.time()) + 3 * DAY,
        )
        self._emit("invoice.payment_failed", invoice)

    def _open_invoice(self, subscription: JSON) -> JSON | None:
        invoice = self._objects.get(subscription["latest_invoice"] or "")
        return invoice if invoice is not None and invoice["status"] == "open" else None

    def _period_end(self, subscription: JSON, *, succeed: bool) -> None:
        """The period ends now: a cancellation set for then takes effect, else the next one is billed."""
        cancel_at = subscription["cancel_at"]
        if cancel_at is not None and cancel_at <= subscription["current_period_end"]:
            self._end_subscription(subscription, "cancellation_requested")
        elif subscription["status"] in ("trialing", "active"):
            self._renew(subscription, succeed=succeed)
        else:
            raise ValueError(
                f"{subscription['id']} is {subscription['status']}: pay or fail its invoice first"
            )

    def _renew(self, subscription: JSON, *, succeed: bool) -> None:
        """A new period starts now (at the trial's end or the period's end) with an invoice for it."""
        before = copy.deepcopy(subscription)
        now = int(time.time())
        previous = (subscription["current_period_start"], subscription["current_period_end"])
        for item in subscription["items"]["data"]:
            recurring = item["price"]["recurring"]
            item["current_period_start"] = now
            item["current_period_end"] = add_interval(now, recurring["interval"], recurring["interval_count"])
        if subscription["status"] == "trialing":
            subscription["trial_end"] = now
            subscription["billing_cycle_anchor"] = now
        invoice = self._new_invoice(subscription, "subscription_cycle", period=previous)
        subscription["latest_invoice"] = invoice["id"]
        subscription["status"] = "active" if succeed else "past_due"
        _legacy_plan_fields(subscription)
        self._emit("invoice.created", invoice)
        self._finalize_invoice(invoice)
        if succeed:
            self._pay_invoice(invoice)
        else:
            self._fail_invoice(invoice)
        self._emit_updated(subscription, before)

    def _end_subscription(self, subscription: JSON, reason: str) -> None:
        if subscription["status"] == "canceled":
            raise ValueError(f"{subscription['id']} is already canceled")
        now = int(time.time())
        subscription.update(status="canceled", ended_at=now, canceled_at=subscription["canceled_at"] or now)
        subscription["cancellation_details"]["reason"] = (
            subscription["cancellation_details"]["reason"] or reason
        )
        self._emit("customer.subscription.deleted", subscription)

    def _subscription_items(self, params: JSON) -> list[tuple[JSON, int, JSON]]:
        items = params.get("items")
        if not isinstance(items, list) or not items:
            raise missing("items")
        parsed = []
        for index, item in enumerate(items):
            param = f"items[{index}]"
            if "price" not in item:
                raise missing(f"{param}[price]")
            price = self._price(item["price"], f"{param}[price]")
            if price["type"] != "recurring":
                raise invalid(
                    f"{param}[price]",
                    f"The price `{price['id']}` is a one-time price; subscriptions need recurring prices.",
                )
            quantity = _int(item.get("quantity", 1), f"{param}[quantity]", minimum=1)
            parsed.append((price, quantity, _metadata(item.get("metadata", {}), param=f"{param}[metadata]")))
        return parsed

    def _subscription_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _SUBSCRIPTION_CREATE)
        if "customer" not in params:
            raise missing("customer")
        customer = self._get("customer", params["customer"], "customer")
        items = self._subscription_items(params)
        trial_end: int | None = None
        if "trial_period_days" in params:
            trial_end = int(time.time()) + _int(params["trial_period_days"], "trial_period_days", 0) * DAY
        if params.get("trial_end") not in (None, "now"):
            trial_end = _int(params["trial_end"], "trial_end")
        if trial_end is not None and trial_end <= int(time.time()):
            trial_end = None
        subscription = self._new_subscription(
            customer["id"],
            items,
            trial_end=trial_end,
            metadata=_metadata(params.get("metadata", {})),
            description=params.get("description"),
            cancel_at_period_end=_bool(params.get("cancel_at_period_end", False), "cancel_at_period_end"),
        )
        return self._public(subscription)

    def _subscription_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("subscription", path["id"])

    def _subscription_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _listing("customer price status"))
        subscriptions = self._all("subscription")
        status = params.get("status")
        if status is None:
            subscriptions = [s for s in subscriptions if s["status"] != "canceled"]
        elif status != "all":
            subscriptions = [s for s in subscriptions if s["status"] == status]
        if "customer" in params:
            subscriptions = [s for s in subscriptions if s["customer"] == params["customer"]]
        if "price" in params:
            subscriptions = [
                s
                for s in subscriptions
                if any(i["price"]["id"] == params["price"] for i in s["items"]["data"])
            ]
        return self._list("/v1/subscriptions", subscriptions, params)

    def _subscription_update(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _SUBSCRIPTION_UPDATE)
        subscription = self._get("subscription", path["id"], "id", status=404)
        if subscription["status"] == "canceled" and set(params) - {
            "metadata",
            "cancellation_details",
            "expand",
        }:
            raise invalid(
                None, "A canceled subscription can only update its cancellation_details and metadata."
            )
        before = copy.deepcopy(subscription)
        now = int(time.time())
        if "metadata" in params:
            subscription["metadata"] = _metadata(params["metadata"], subscription["metadata"])
        if "description" in params:
            subscription["description"] = _str(params["description"], "description")
        if "items" in params:
            self._update_items(subscription, params["items"])
        if "cancel_at_period_end" in params:
            cancel = _bool(params["cancel_at_period_end"], "cancel_at_period_end")
            subscription["cancel_at_period_end"] = cancel
            subscription["cancel_at"] = subscription["current_period_end"] if cancel else None
            subscription["canceled_at"] = now if cancel else None
            subscription["cancellation_details"]["reason"] = "cancellation_requested" if cancel else None
        if "cancel_at" in params:
            cancel_at = None if params["cancel_at"] == "" else _int(params["cancel_at"], "cancel_at")
            subscription["cancel_at"] = cancel_at
            subscription["canceled_at"] = now if cancel_at else None
            subscription["cancel_at_period_end"] = cancel_at == subscription["current_period_end"]
        _set_cancellation_details(subscription, params)
        trial_end = params.get("trial_end")
        if trial_end not in (None, "now") and subscription["status"] == "trialing":
            # Moving the trial's end moves the period's end with it.
            subscription["trial_end"] = _int(trial_end, "trial_end")
            for item in subscription["items"]["data"]:
                item["current_period_end"] = subscription["trial_end"]
        _legacy_plan_fields(subscription)
        self._emit_updated(subscription, before)
        if trial_end == "now" and subscription["status"] == "trialing":
            self._renew(subscription, succeed=True)
        return self._public(subscription)

    def _update_items(self, subscription: JSON, items: Any) -> None:
        """Stripe's rules: an item with ``id`` changes (or goes, with ``deleted``); one without is added."""
        if not isinstance(items, list):
            raise invalid("items", "Invalid array: items")
        data: list[JSON] = subscription["items"]["data"]
        for index, spec in enumerate(items):
            param = f"items[{index}]"
            if "id" in spec:
                item = next((i for i in data if i["id"] == spec["id"]), None)
                if item is None:
                    raise no_such("subscription_item", spec["id"], f"{param}[id]")
                if "deleted" in spec and _bool(spec["deleted"], f"{param}[deleted]"):
                    data.remove(item)
                    continue
                if "price" in spec:
                    price = self._price(spec["price"], f"{param}[price]")
                    item["price"], item["plan"] = self._public(price), _plan_of(price)
                if "quantity" in spec:
                    item["quantity"] = _int(spec["quantity"], f"{param}[quantity]", minimum=1)
                if "metadata" in spec:
                    item["metadata"] = _metadata(spec["metadata"], item["metadata"], f"{param}[metadata]")
            else:
                if "price" not in spec:
                    raise missing(f"{param}[price]")
                price = self._price(spec["price"], f"{param}[price]")
                if any(i["price"]["id"] == price["id"] for i in data):
                    raise invalid(
                        f"{param}[price]",
                        "Cannot add multiple subscription items with the same price. "
                        "Pass the existing item's `id` to change it.",
                    )
                quantity = _int(spec.get("quantity", 1), f"{param}[quantity]", minimum=1)
                data.append(
                    self._new_item(
                        subscription["id"],
                        price,
                        quantity,
                        _metadata(spec.get("metadata", {})),
                        subscription["current_period_start"],
                        subscription["current_period_end"],
                    )
                )
        if not data:
            raise invalid("items", "A subscription must have at least one active plan.")
        subscription["items"]["total_count"] = len(data)

    def _subscription_cancel(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _SUBSCRIPTION_CANCEL)
        subscription = self._get("subscription", path["id"], "id", status=404)
        if subscription["status"] == "canceled":
            raise invalid("id", f"No such subscription: '{subscription['id']}'", code="resource_missing")
        _set_cancellation_details(subscription, params)
        self._end_subscription(subscription, "cancellation_requested")
        return self._public(subscription)

    def _invoice_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("invoice", path["id"])

    def _invoice_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _listing("customer subscription status"))
        invoices = self._all("invoice")
        for field in ("customer", "subscription", "status"):
            if field in params:
                invoices = [i for i in invoices if i[field] == params[field]]
        return self._list("/v1/invoices", invoices, params)

    # --- payment intents --------------------------------------------------------------------------

    def _new_intent(
        self, *, amount: int, currency: str, customer: str | None, metadata: JSON, description: str | None
    ) -> JSON:
        intent_id = _new_id("pi_", 24)
        intent = self._store(
            {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0,
                "automatic_payment_methods": None,
                "canceled_at": None,
                "cancellation_reason": None,
                "capture_method": "automatic_async",
                "client_secret": f"{intent_id}_secret_{_new_id('', 24)}",
                "confirmation_method": "automatic",
                "created": int(time.time()),
                "currency": currency,
                "customer": customer,
                "description": description,
                "last_payment_error": None,
                "latest_charge": None,
                "livemode": False,
                "metadata": metadata,
                "next_action": None,
                "payment_method": None,
                "payment_method_types": ["card"],
                "receipt_email": None,
                "setup_future_usage": None,
                "status": "requires_payment_method",
            }
        )
        self._emit("payment_intent.created", intent)
        return intent

    def _confirm_intent(self, intent: JSON, payment_method: str) -> None:
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise invalid(
                "intent",
                f"This PaymentIntent's status is {intent['status']}, and it cannot be confirmed.",
                code="payment_intent_unexpected_state",
            )
        intent["payment_method"] = payment_method
        if payment_method in DECLINED_PAYMENT_METHODS:
            error: JSON = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "payment_method": {"id": payment_method, "object": "payment_method"},
            }
            intent.update(status="requires_payment_method", last_payment_error=error, payment_method=None)
            self._emit("payment_intent.payment_failed", intent)
            raise StripeError(
                402,
                error["message"],
                type="card_error",
                code="card_declined",
                extra={"decline_code": "generic_decline", "payment_intent": self._public(intent)},
            )
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=_new_id("ch_", 24),
            last_payment_error=None,
        )
        self._emit("payment_intent.succeeded", intent)

    def _intent_create(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _INTENT_CREATE)
        if "amount" not in params:
            raise missing("amount")
        amount = _int(params["amount"], "amount", minimum=1)
        currency = _str(params.get("currency"), "currency")
        if currency is None:
            raise missing("currency")
        customer = params.get("customer") or None
        if customer is not None:
            self._get("customer", customer, "customer")
        intent = self._new_intent(
            amount=amount,
            currency=currency.lower(),
            customer=customer,
            metadata=_metadata(params.get("metadata", {})),
            description=params.get("description"),
        )
        if params.get("payment_method"):
            intent.update(payment_method=params["payment_method"], status="requires_confirmation")
        if _bool(params.get("confirm", False), "confirm"):
            if not intent["payment_method"]:
                raise missing("payment_method")
            self._confirm_intent(intent, intent["payment_method"])
        return self._public(intent)

    def _intent_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("payment_intent", path["id"])

    def _intent_update(self, path: dict[str, str], params: JSON) -> JSON:
        _check(
            params,
            {
                "amount": None,
                "description": None,
                "metadata": None,
                "payment_method": None,
                "expand": None,
            },
        )
        intent = self._get("payment_intent", path["id"], "id", status=404)
        before = copy.deepcopy(intent)
        if "amount" in params:
            intent["amount"] = _int(params["amount"], "amount", minimum=1)
        if "description" in params:
            intent["description"] = _str(params["description"], "description")
        if "metadata" in params:
            intent["metadata"] = _metadata(params["metadata"], intent["metadata"])
        if params.get("payment_method"):
            intent.update(payment_method=params["payment_method"], status="requires_confirmation")
        self._emit_updated(intent, before)
        return self._public(intent)

    def _intent_confirm(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _INTENT_CONFIRM)
        intent = self._get("payment_intent", path["id"], "id", status=404)
        payment_method = params.get("payment_method") or intent["payment_method"]
        if not payment_method:
            raise missing("payment_method")
        self._confirm_intent(intent, payment_method)
        return self._public(intent)

    def _intent_cancel(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _fields("cancellation_reason expand"))
        intent = self._get("payment_intent", path["id"], "id", status=404)
        if intent["status"] in ("succeeded", "canceled"):
            raise invalid(
                "intent",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=params.get("cancellation_reason") or "requested_by_customer",
        )
        self._emit("payment_intent.canceled", intent)
        return self._public(intent)

    # --- events -----------------------------------------------------------------------------------

    def _event_retrieve(self, path: dict[str, str], params: JSON) -> JSON:
        return self._retrieve("event", path["id"])

    def _event_list(self, path: dict[str, str], params: JSON) -> JSON:
        _check(params, _listing("type types delivery_success"))
        events = self._all("event")
        if "type" in params:
            pattern = re.compile("^" + re.escape(params["type"]).replace(r"\*", ".*") + "$")
            events = [e for e in events if pattern.match(e["type"])]
        if "types" in params:
            events = [e for e in events if e["type"] in params["types"]]
        return self._list("/v1/events", events, params)

    # --- hosted pages (browser tests) -------------------------------------------------------------

    async def _checkout_page(self, request: Request) -> Response:
        with self._lock:
            session = self._objects.get(request.path_params["id"])
            if session is None or session["object"] != "checkout.session":
                return HTMLResponse("<h1>Checkout session not found</h1>", 404)
            rows = "".join(
                f"<li>{html.escape(i['description'])} x {i['quantity']}: "
                f"{i['amount_total']} {i['currency']}</li>"
                for i in self._line_items_list(session, {"limit": 100})["data"]
            )
            days, trial = (
                session["_trial_period_days"],
                session["_trial_end"] or session["_trial_period_days"],
            )
        if session["status"] != "open":
            return HTMLResponse(f"<h1>This checkout session is {session['status']}</h1>", 410)
        note = (f"<p>{days}-day free trial</p>" if days else "<p>Free trial</p>") if trial else ""
        cancel = f'<a href="{html.escape(session["cancel_url"])}">Cancel</a>' if session["cancel_url"] else ""
        button = "Start trial" if trial else "Pay"
        page = (
            f"<!doctype html><title>Checkout</title><h1>Checkout</h1><ul>{rows}</ul>{note}"
            f"<p>Total due today: {session['amount_total']} {session['currency']}</p>"
            f'<form method="post"><button type="submit">{button}</button></form>{cancel}'
        )
        return HTMLResponse(page)

    async def _checkout_pay(self, request: Request) -> Response:
        session_id = request.path_params["id"]
        try:
            events = self._helper(lambda: self._complete_session(session_id), deliver=False)
        except (KeyError, ValueError):
            return HTMLResponse("<h1>This checkout session cannot be paid</h1>", 410)
        # Deliver before redirecting so the success page usually finds the payment recorded, as with Stripe.
        await self._deliver_async(self._targets(events), self._generation)
        success_url = self._objects[session_id]["success_url"] or f"{self.base_url}/c/pay/{session_id}"
        return RedirectResponse(success_url.replace("{CHECKOUT_SESSION_ID}", session_id), 303)

    async def _portal_page(self, request: Request) -> Response:
        with self._lock:
            portal = self._objects.get(request.path_params["id"])
            if portal is None or portal["object"] != "billing_portal.session":
                return HTMLResponse("<h1>Portal session not found</h1>", 404)
            subscriptions = [
                s
                for s in self._all("subscription")
                if s["customer"] == portal["customer"] and s["status"] != "canceled"
            ]
        rows = "".join(
            f"<li>{html.escape(s['items']['data'][0]['price']['id'])}: {s['status']}"
            + (
                " (cancels at period end)"
                if s["cancel_at_period_end"]
                else f'<form method="post" action="/p/session/{portal["id"]}/cancel/{s["id"]}">'
                '<button type="submit">Cancel plan</button></form>'
            )
            + "</li>"
            for s in subscriptions
        )
        back = f'<a href="{html.escape(portal["return_url"])}">Return</a>' if portal["return_url"] else ""
        return HTMLResponse(f"<!doctype html><title>Billing</title><h1>Billing</h1><ul>{rows}</ul>{back}")

    async def _portal_cancel(self, request: Request) -> Response:
        portal_id, subscription_id = request.path_params["id"], request.path_params["subscription"]

        def act() -> None:
            portal = self._objects[portal_id]
            subscription = self._subscription(subscription_id)
            if subscription["customer"] != portal["customer"]:
                raise KeyError(subscription_id)
            # The portal's default: cancel at the end of the period.
            self._subscription_update({"id": subscription_id}, {"cancel_at_period_end": "true"})

        try:
            events = self._helper(act, deliver=False)
        except (KeyError, StripeError):
            return HTMLResponse("<h1>Not found</h1>", 404)
        await self._deliver_async(self._targets(events), self._generation)
        return RedirectResponse(self._objects[portal_id]["return_url"] or f"/p/session/{portal_id}", 303)


def _event_prefix(obj: JSON) -> str:
    return "customer.subscription" if obj["object"] == "subscription" else obj["object"]


def _set_cancellation_details(subscription: JSON, params: JSON) -> None:
    details = params.get("cancellation_details")
    if isinstance(details, dict):
        for field in ("comment", "feedback"):
            if field in details:
                subscription["cancellation_details"][field] = details[field] or None


def _plan_of(price: JSON) -> JSON:
    """The legacy Plan view of a recurring price, still present on subscription items."""
    recurring = price["recurring"] or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def _legacy_plan_fields(subscription: JSON) -> None:
    """Top-level fields older API versions had: the period, and plan/quantity for one-item subscriptions."""
    items = subscription["items"]["data"]
    subscription["current_period_start"] = items[0]["current_period_start"]
    subscription["current_period_end"] = items[0]["current_period_end"]
    single = len(items) == 1
    subscription["plan"] = copy.deepcopy(items[0]["plan"]) if single else None
    subscription["quantity"] = items[0]["quantity"] if single else None
