"""Local HTTP servers that speak each SMS provider's API, for the gateway tests and the benchmarks.

Each fake listens on a free port of 127.0.0.1, checks authentication, the required parameters and the
number, answers with the provider's own success and error bodies and status codes, keeps what it
accepted in `accepted`, and can be told to fail: `fail_next(2)` answers 503 to the next two requests,
`fail_next(1, "hang")` holds the next one past any client timeout; a fake may know more ways to fail.

Vonage and Clickatell also call back with delivery receipts, as their dashboards are set to: give the
fake `receipts_to(url, ...)` and every accepted message gets one. `early=True` calls back before the
send is even answered, as a fast network can; `method="GET"` is Vonage's GET receipts; a receipt not
answered 2xx is retried (`receipt_tries` times in all), as the providers do; `receipt_answers` keeps
the status of every try.

`rate_limit = 5` makes a fake take at most 5 messages in any second, as a provider's account does: a
message past it gets the provider's own "slow down" answer, with the wait it names (Vonage's status 1
and its "please wait [ ms ]", Clickatell's and Orange's 429 with Retry-After), and counts in `throttled`.

    with FakeVonage(api_key="key", api_secret="secret") as vonage:
        VonageGateway({"api_key": "key", "api_secret": "secret", "base_url": vonage.base_url}).send(...)
"""

import base64
import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

# No country code starts with 999: every fake refuses such a number the way its provider refuses an
# unroutable one, so a test can reach the provider's own "bad number" answer past the gateway's format check.
UNROUTABLE = "999"
_DIGITS = re.compile(r"[1-9]\d{6,14}")

# HTTP status and body (a dict is sent as JSON, a str as an HTML page), and maybe headers.
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class Request:
    """What a fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: Any
    raw: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.raw or b"null")
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw.decode(), keep_blank_values=True))


def routable(digits: str) -> bool:
    """International digits without + or 00, of a country that exists."""
    return bool(_DIGITS.fullmatch(digits)) and not digits.startswith(UNROUTABLE)


class FakeProvider:
    """The shared machinery: the server and its thread, what was accepted, the failures to come."""

    hang_seconds = 10.0
    latency = 0.0  # seconds every answer takes, as a provider across the internet would (benchmarks)
    rate_limit: float | None = None  # messages it takes in any one second; None: any number

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.receipt_url: str | None = None
        self.receipt_method = "POST"
        self.receipt_status = "delivered"
        self.receipt_early = False
        self.receipt_tries = 3
        self.receipt_answers: list[int] = []
        self._receipt_threads: list[threading.Thread] = []
        self.throttled = 0  # messages refused for coming too fast
        self._taken: deque[float] = deque()  # when each message of the last second was taken

    def wait_needed(self) -> float:
        """0 when one more message fits the rate limit (it is counted), else the seconds until it would."""
        if self.rate_limit is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            while self._taken and self._taken[0] <= now - 1.0:
                self._taken.popleft()
            if len(self._taken) < self.rate_limit:
                self._taken.append(now)
                return 0.0
            self.throttled += 1
            return max(self._taken[0] + 1.0 - now, 0.001)

    def receipts_to(self, url: str, *, method: str = "POST", status: str = "delivered",
                    early: bool = False, tries: int = 3) -> None:
        """Call `url` back with a receipt for every message accepted from now on."""
        self.receipt_url, self.receipt_method, self.receipt_status = url, method, status
        self.receipt_early, self.receipt_tries = early, tries

    def receipt(self, message_id: str, to: str, status: str) -> dict[str, Any]:
        """The provider's receipt body for one message (each fake writes its own)."""
        raise NotImplementedError

    def _call_back(self, message_id: str, to: str) -> None:
        """Send one message's receipt: now (early) or from a thread once the send is answered."""
        if self.receipt_url is None:
            return
        if self.receipt_early:
            self._deliver_receipt(message_id, to)
            return
        thread = threading.Thread(target=self._deliver_receipt, args=(message_id, to), daemon=True)
        self._receipt_threads.append(thread)
        thread.start()

    def _deliver_receipt(self, message_id: str, to: str) -> None:
        body = self.receipt(message_id, to, self.receipt_status)
        for attempt in range(self.receipt_tries):
            status = _call(self.receipt_url or "", self.receipt_method, body)
            with self._lock:
                self.receipt_answers.append(status)
            if 200 <= status < 300 or self._stopping.wait(0.05 * (attempt + 1)):
                return

    def wait_for_receipts(self, timeout: float = 10.0) -> None:
        """Wait until every receipt sent from a thread has been answered."""
        for thread in list(self._receipt_threads):
            thread.join(timeout)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first: `with Fake…() as fake:`"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, count: int = 1, how: str = "503") -> None:
        """Fail the next `count` requests: "503" answers Service Unavailable, "hang" answers too late."""
        with self._lock:
            self._failures.extend([how] * count)

    def __enter__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # frees any request still hanging
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def respond(self, request: Request) -> Answer | None:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
        if failure == "hang":
            self._stopping.wait(self.hang_seconds)
            return None
        if failure == "503":
            return 503, "<html><body><h1>503 Service Unavailable</h1></body></html>"
        time.sleep(self.latency)
        return self.route(request, failure)

    def route(self, request: Request, failure: str | None) -> Answer:
        raise NotImplementedError


def _call(url: str, method: str, body: dict[str, Any]) -> int:
    """Call a receipt URL the way the providers do: GET with a query string, POST as a form, or JSON."""
    if method == "GET":
        request = UrlRequest(f"{url}?{urlencode(body)}", method="GET")
    elif method == "POST-JSON":
        request = UrlRequest(url, data=json.dumps(body).encode(), method="POST",
                             headers={"Content-Type": "application/json"})
    else:
        request = UrlRequest(url, data=urlencode(body).encode(), method="POST",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urlopen(request, timeout=10) as answer:
            return answer.status
    except HTTPError as exc:
        return exc.code
    except URLError:
        return 0


def _handler_for(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = fake.respond(Request(self.command, unquote(url.path), dict(parse_qsl(url.query)),
                                          self.headers, raw))
            if answer is None:
                return  # hung: the client gave up long ago
            status, body, *more = answer
            page = isinstance(body, str)
            data = body.encode() if page else json.dumps(body).encode()
            try:
                self.send_response(status)
                for name, value in (more[0] if more else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/html" if page else "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


NOT_FOUND = 404, "<html><body><h1>404 Not Found</h1></body></html>"


def retry_after(wait: float) -> dict[str, str]:
    """A Retry-After header for a wait: whole seconds, as HTTP has them."""
    return {"Retry-After": str(max(1, math.ceil(wait)))}


class FakeAspsms(FakeProvider):
    """json.aspsms.com: SendSimpleTextSMS and SendTextSMS; always HTTP 200 with a StatusCode.

    Extra failure: "busy" (StatusCode 24). `credits` counts down; at 0 the answer is StatusCode 5.
    """

    def __init__(self, userkey: str, password: str, credits: int = 100) -> None:
        super().__init__()
        self.userkey, self.password, self.credits = userkey, password, credits

    def route(self, request: Request, failure: str | None) -> Answer:
        if request.method != "POST" or request.path not in ("/SendSimpleTextSMS", "/SendTextSMS"):
            return NOT_FOUND
        body = request.json()
        if not isinstance(body, dict):
            return 400, "<html><body><h1>400 Bad Request</h1></body></html>"
        return 200, self._status(body, failure)

    def _status(self, body: dict[str, Any], failure: str | None) -> dict[str, str]:
        originator = str(body.get("Originator") or "")
        # ASPSMS takes +41… and 0041…; the code for a malformed recipient is not in the sources we
        # found, so this fake drops such recipients and answers as for none (StatusCode 20).
        recipients = [str(number) for number in body.get("Recipients") or []
                      if routable(re.sub(r"^(\+|00)", "", str(number)))]
        if body.get("UserName") != self.userkey or body.get("Password") != self.password:
            return {"StatusCode": "3", "StatusInfo": "Authorization failed."}
        if failure == "busy":
            return {"StatusCode": "24", "StatusInfo": "Service temporarely not available."}
        if len(originator) > 11 and not re.fullmatch(r"\+?\d{7,16}", originator):
            return {"StatusCode": "10",
                    "StatusInfo": "Invalid originator. A maximum of 11 characters is allowed "
                                  "for alphanumeric originators."}
        if not body.get("MessageText"):
            return {"StatusCode": "11", "StatusInfo": "Invalid message date. Please verify the data."}
        if not recipients:
            return {"StatusCode": "20",
                    "StatusInfo": "Missing a recipient. Please specify at least one recipient."}
        if self.credits < len(recipients):
            return {"StatusCode": "5",
                    "StatusInfo": "Not enough credits available. Please recharge your account "
                                  "to proceed."}
        self.credits -= len(recipients)
        for number in recipients:
            self.accepted.append({"to": number, "text": body["MessageText"], "originator": originator})
        return {"StatusCode": "1", "StatusInfo": "OK"}


class FakeOrange(FakeProvider):
    """api.orange.com: /oauth/v3/token (Basic client_id:client_secret) and the SMS outbound requests.

    Extra failures: "throttle" (429, code 53, no Retry-After) and "no_bundle" (403 with `no_bundle_body`:
    the pages of Orange we found do not show this answer's shape, so a test can set the ones it guards
    against).
    `token_requests` counts tokens handed out;
    `expire_tokens()` makes every token handed out so far answer 401 "Expired credentials".
    """

    def __init__(
        self, client_id: str, client_secret: str, sender_address: str, expires_in: int = 3600
    ) -> None:
        super().__init__()
        self.client_id, self.client_secret, self.sender_address = client_id, client_secret, sender_address
        self.expires_in = expires_in
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.no_bundle_body: Any = {"requestError": {"policyException": {
            "messageId": "POL0001", "text": "Policy error: %1",
            "variables": ["Insufficient SMS bundle balance"]}}}

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def route(self, request: Request, failure: str | None) -> Answer:
        if request.method == "POST" and request.path == "/oauth/v3/token":
            return self._token(request)
        match = re.fullmatch(r"/smsmessaging/v1/outbound/([^/]+)/requests", request.path)
        if request.method == "POST" and match:
            return self._send(request, match.group(1), failure)
        return NOT_FOUND

    def _token(self, request: Request) -> Answer:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client",
                         "error_description": "The requested service needs credentials, "
                                              "but the ones provided were invalid."}
        if request.form().get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "The authorization grant type is not supported."}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.monotonic() + self.expires_in
            self.token_requests += 1
        return 200, {"token_type": "Bearer", "access_token": token, "expires_in": self.expires_in}

    def _send(self, request: Request, sender: str, failure: str | None) -> Answer:
        refusal = self._refuse_token(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if refusal is None and (failure == "throttle" or (wait := self.wait_needed())):
            refusal = 429, {"code": 53, "message": "Too many requests",
                            "description": "The application has made too many calls "
                                           "and has exceeded the rate limit for this service."}
            if failure != "throttle":
                refusal = (*refusal, retry_after(wait))
        if refusal is None and failure == "no_bundle":
            refusal = 403, self.no_bundle_body
        outbound = (request.json() or {}).get("outboundSMSMessageRequest") or {}
        refusal = refusal or self._refuse_request(outbound, sender)
        if refusal is not None:
            return refusal
        addresses = outbound["address"] if isinstance(outbound["address"], list) else [outbound["address"]]
        text = outbound["outboundSMSTextMessage"]["message"]
        for address in addresses:
            self.accepted.append({"to": address, "text": text, "sender_name": outbound.get("senderName")})
        resource = (f"{self.base_url}/smsmessaging/v1/outbound/{quote(sender, safe='')}"
                    f"/requests/{secrets.token_hex(16)}")
        return 201, {"outboundSMSMessageRequest": {**outbound, "resourceURL": resource}}

    def _refuse_token(self, token: str) -> Answer | None:
        if token not in self.tokens:
            return 401, {"code": 41, "message": "Invalid credentials",
                         "description": "The requested service needs credentials, but the ones provided were "
                                        "invalid."}
        if self.tokens[token] <= time.monotonic():
            return 401, {"code": 42, "message": "Expired credentials",
                         "description": "The requested service needs credentials, and the ones provided were "
                                        "out-of-date."}
        return None

    def _refuse_request(self, outbound: dict[str, Any], sender: str) -> Answer | None:
        text = (outbound.get("outboundSMSTextMessage") or {}).get("message")
        for name, value in (("address", outbound.get("address")),
                            ("senderAddress", outbound.get("senderAddress")),
                            ("outboundSMSTextMessage", text)):
            if not value:
                return 400, _service_exception("SVC0002", "Invalid input value for message part %1", name)
        if outbound["senderAddress"] != sender or sender != "tel:" + self.sender_address:
            return 400, _service_exception("SVC0002", "Invalid input value for message part %1",
                                           "senderAddress")
        addresses = outbound["address"]
        if not isinstance(addresses, list):
            addresses = [addresses]
        if not all(str(address).startswith("tel:+") and routable(str(address)[5:]) for address in addresses):
            return 400, _service_exception("SVC0004", "No valid addresses provided in message part %1",
                                           "address")
        return None


def _service_exception(message_id: str, text: str, variable: str) -> dict[str, Any]:
    exception = {"messageId": message_id, "text": text, "variables": [variable]}
    return {"requestError": {"serviceException": exception}}


class FakeClickatell(FakeProvider):
    """platform.clickatell.com: POST /messages with the integration's API key as Authorization.

    202 when every message is accepted, 207 when some are, 400 when none are.
    """

    def __init__(self, api_key: str, two_way: bool = False) -> None:
        super().__init__()
        self.api_key, self.two_way = api_key, two_way
        self.receipt_method = "POST-JSON"

    def receipt(self, message_id: str, to: str, status: str) -> dict[str, Any]:
        return _clickatell_receipt(message_id, to, status)

    def route(self, request: Request, failure: str | None) -> Answer:
        if request.method != "POST" or request.path != "/messages":
            return NOT_FOUND
        if request.headers.get("Authorization") != self.api_key:
            return 401, _clickatell_error(108, "Invalid or missing integration API Key.",
                                          "The integration API key is either incorrect "
                                          "or has not been included in the API call.")
        if wait := self.wait_needed():
            refusal = _clickatell_error(429, "Too many requests.", "You exceeded the integration's rate.")
            return 429, refusal, retry_after(wait)
        body = request.json()
        if not isinstance(body, dict) or not body.get("content") or not isinstance(body.get("to"), list):
            return 400, _clickatell_error(101, "Invalid or missing parameters.",
                                          "The content and to parameters are required.")
        if body.get("from") and not self.two_way:
            return 400, _clickatell_error(607, "Invalid FROM number.",
                                          "User specified FROM number, but integration isn't two-way.")
        messages = [self._message(str(number), body["content"]) for number in body["to"]]
        accepted = sum(message["accepted"] for message in messages)
        status = 202 if accepted == len(messages) else 207 if accepted else 400
        return status, {"messages": messages, "errorCode": None, "error": None, "errorDescription": None}

    def _message(self, number: str, content: str) -> dict[str, Any]:
        if not routable(number):
            return {"apiMessageId": None, "accepted": False, "to": number, "errorCode": 105,
                    "error": "Invalid destination address.",
                    "errorDescription": "The destination address you are attempting to send to is invalid."}
        message_id = secrets.token_hex(16)
        self.accepted.append({"to": number, "content": content, "apiMessageId": message_id})
        self._call_back(message_id, number)
        return {"apiMessageId": message_id, "accepted": True, "to": number, "errorCode": None, "error": None,
                "errorDescription": None}


def _clickatell_receipt(message_id: str, to: str, status: str) -> dict[str, Any]:
    """Clickatell's REST status callback (JSON): status code 004 received, 007 error delivering."""
    code, name, words = ((4, "RECEIVED_BY_RECIPIENT", "Received by recipient") if status == "delivered"
                         else (7, "ERROR_DELIVERING_MESSAGE", "Error delivering message"))
    return {"integrationName": "Provisio", "messageId": message_id, "requestId": secrets.token_hex(8),
            "clientMessageId": "", "to": to, "from": "", "statusCode": code, "status": name,
            "statusDescription": words, "timestamp": int(time.time() * 1000)}


def _clickatell_error(code: int, error: str, description: str) -> dict[str, Any]:
    return {"messages": [], "errorCode": code, "error": error, "errorDescription": description}


class FakeVonage(FakeProvider):
    """rest.nexmo.com: POST /sms/json (form, JSON or query); always HTTP 200 with one status per message.

    Extra failure: "throttle" (status 1).
    """

    def __init__(self, api_key: str, api_secret: str, signature_secret: str = "") -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.signature_secret = signature_secret  # signed webhooks: MD5 hash, Vonage's default method

    def receipt(self, message_id: str, to: str, status: str) -> dict[str, Any]:
        """A DLR as the SMS API sends it; with a signature secret, timestamp, nonce and sig added."""
        now = time.gmtime()
        body = {"msisdn": to, "to": "Provisio", "network-code": "22801", "messageId": message_id,
                "price": "0.03330000", "status": status, "scts": time.strftime("%y%m%d%H%M", now),
                "err-code": "0" if status == "delivered" else "1", "api-key": self.api_key,
                "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", now)}
        if self.signature_secret:
            body.update(timestamp=str(int(time.time())), nonce=secrets.token_hex(8))
            signed = "".join(f"&{key}={str(body[key]).replace('&', '_').replace('=', '_')}"
                             for key in sorted(body))
            body["sig"] = hashlib.md5((signed + self.signature_secret).encode()).hexdigest()
        return body

    def route(self, request: Request, failure: str | None) -> Answer:
        if request.method not in ("GET", "POST") or request.path != "/sms/json":
            return NOT_FOUND
        json_body = request.json() if "json" in request.headers.get("Content-Type", "") else None
        params = {**request.query, **(json_body if isinstance(json_body, dict) else request.form())}
        return 200, {"message-count": "1", "messages": [self._message(params, failure)]}

    def _message(self, params: dict[str, Any], failure: str | None) -> dict[str, Any]:
        for name in ("api_key", "api_secret", "from", "to", "text"):
            if not params.get(name):
                return {"status": "2", "error-text": f"Missing {name} param"}
        if params["api_key"] != self.api_key or params["api_secret"] != self.api_secret:
            return {"status": "4", "error-text": "Bad Credentials"}
        if failure == "throttle":
            return {"status": "1", "error-text": "Throughput Rate Exceeded - please wait [ 1000 ] and retry"}
        if wait := self.wait_needed():
            text = f"Throughput Rate Exceeded - please wait [ {math.ceil(wait * 1000)} ] and retry"
            return {"status": "1", "error-text": text}
        if not params["to"].isdigit():
            return {"status": "3", "error-text": "Invalid to address"}
        if not routable(params["to"]):
            return {"status": "6", "error-text": "Unroutable message - rejected"}
        message_id = secrets.token_hex(8).upper()
        self.accepted.append({"to": params["to"], "from": params["from"], "text": params["text"],
                              "type": params.get("type", "text"), "message-id": message_id})
        self._call_back(message_id, params["to"])
        return {"to": params["to"], "message-id": message_id, "status": "0",
                "remaining-balance": "9.96670000", "message-price": "0.03330000", "network": "23410"}
