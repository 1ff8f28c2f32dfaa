"""The four SMS gateways over real HTTP to local servers that speak each provider's API."""

import email.utils
import socket
import time

import pytest
import requests

import gateways
from gateways import clickatell, orange, sms_http, vonage
from gateways.aspsms import AspsmsGateway
from gateways.base import Outcome, Outgoing
from gateways.clickatell import ClickatellGateway
from gateways.orange import OrangeGateway
from gateways.vonage import VonageGateway
from tools.fake_providers import FakeAspsms, FakeClickatell, FakeOrange, FakeVonage

NUMBER = "+41791234567"
UNROUTABLE = "+99912345678"
SECRET = "s3cr3t-never-shown"


def sms(recipient: str = NUMBER, body: str = "Your link: https://provisio.example/l/abc") -> Outgoing:
    return Outgoing(recipient, "", body)


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Keep every request on this machine, make a hung provider cost half a second, start with no Orange token
    (a fake on a port an earlier fake used must not meet that fake's token)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(sms_http, "TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(orange, "_tokens", {})


@pytest.fixture
def aspsms_fake():
    with FakeAspsms(userkey="USERKEY123", password=SECRET) as fake:
        yield fake


@pytest.fixture
def orange_fake():
    with FakeOrange(client_id="client", client_secret=SECRET, sender_address="+2250000") as fake:
        yield fake


@pytest.fixture
def clickatell_fake():
    with FakeClickatell(api_key=SECRET) as fake:
        yield fake


@pytest.fixture
def vonage_fake():
    with FakeVonage(api_key="key", api_secret=SECRET) as fake:
        yield fake


def aspsms_gateway(fake, **changes):
    return AspsmsGateway({"userkey": "USERKEY123", "password": SECRET, "originator": "Provisio",
                          "base_url": fake.base_url, **changes})


def orange_gateway(fake, **changes):
    return OrangeGateway({"client_id": "client", "client_secret": SECRET, "sender_address": "+2250000",
                          "sender_name": "Provisio", "base_url": fake.base_url, **changes})


def clickatell_gateway(fake, **changes):
    return ClickatellGateway({"api_key": SECRET, "base_url": fake.base_url, **changes})


def vonage_gateway(fake, **changes):
    return VonageGateway({"api_key": "key", "api_secret": SECRET, "sender": "Provisio",
                          "base_url": fake.base_url, **changes})


# --- ASPSMS ---------------------------------------------------------------------------------------

def test_aspsms_accepts_and_records_the_message(aspsms_fake):
    result = aspsms_gateway(aspsms_fake).send(sms())
    assert result.outcome is Outcome.SENT
    assert aspsms_fake.accepted == [{"to": NUMBER, "text": sms().body, "originator": "Provisio"}]
    assert aspsms_fake.requests[0].path == "/SendSimpleTextSMS"


def test_aspsms_bad_password_is_permanent_in_its_own_words(aspsms_fake):
    result = aspsms_gateway(aspsms_fake, password="wrong").send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert result.detail == "ASPSMS: Authorization failed. (StatusCode 3)"
    assert aspsms_fake.accepted == []


def test_aspsms_unreachable_number_is_permanent(aspsms_fake):
    result = aspsms_gateway(aspsms_fake).send(sms(UNROUTABLE))
    assert result.outcome is Outcome.PERMANENT
    assert "StatusCode 20" in result.detail


def test_aspsms_no_credit_is_permanent(aspsms_fake):
    aspsms_fake.credits = 0
    result = aspsms_gateway(aspsms_fake).send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert "Not enough credits" in result.detail


def test_aspsms_service_unavailable_status_is_transient(aspsms_fake):
    aspsms_fake.fail_next(1, "busy")
    result = aspsms_gateway(aspsms_fake).send(sms())
    assert result.outcome is Outcome.TRANSIENT
    assert "StatusCode 24" in result.detail


# --- Orange ---------------------------------------------------------------------------------------

def test_orange_sends_with_a_token_and_returns_the_request_id(orange_fake):
    result = orange_gateway(orange_fake).send(sms())
    assert result.outcome is Outcome.SENT
    assert result.provider_id and len(result.provider_id) == 32
    assert orange_fake.accepted == [{"to": "tel:" + NUMBER, "text": sms().body, "sender_name": "Provisio"}]
    assert orange_fake.requests[1].path == "/smsmessaging/v1/outbound/tel:+2250000/requests"


def test_orange_token_is_fetched_once_and_reused_by_later_gateways(orange_fake):
    for _ in range(3):  # the outbox builds a new gateway for every message
        assert orange_gateway(orange_fake).send(sms()).outcome is Outcome.SENT
    assert orange_fake.token_requests == 1
    assert len(orange_fake.accepted) == 3


def test_orange_expired_token_is_replaced_once_and_the_message_sent(orange_fake):
    assert orange_gateway(orange_fake).send(sms()).outcome is Outcome.SENT
    orange_fake.expire_tokens()
    result = orange_gateway(orange_fake).send(sms())
    assert result.outcome is Outcome.SENT
    assert orange_fake.token_requests == 2
    assert len(orange_fake.accepted) == 2


def test_orange_token_about_to_expire_is_renewed_before_use(orange_fake):
    orange_fake.expires_in = 30  # under the renewal margin: every send asks for a new one
    assert orange_gateway(orange_fake).send(sms()).outcome is Outcome.SENT
    assert orange_gateway(orange_fake).send(sms()).outcome is Outcome.SENT
    assert orange_fake.token_requests == 2


def test_orange_bad_client_secret_is_permanent_in_its_own_words(orange_fake):
    result = orange_gateway(orange_fake, client_secret="wrong").send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert "invalid_client" in result.detail and "HTTP 401" in result.detail
    assert "wrong" not in result.detail and SECRET not in result.detail
    assert orange_fake.accepted == []


def test_orange_unroutable_number_is_permanent(orange_fake):
    result = orange_gateway(orange_fake).send(sms(UNROUTABLE))
    assert result.outcome is Outcome.PERMANENT
    assert result.detail == "Orange: SVC0004 No valid addresses provided in message part address (HTTP 400)"


def test_orange_throttling_is_a_wait_without_a_length_when_it_names_none(orange_fake):
    orange_gateway(orange_fake).send(sms())  # take a token first, so the failure meets the SMS request
    orange_fake.fail_next(1, "throttle")
    result = orange_gateway(orange_fake).send(sms())
    assert (result.outcome, result.retry_after) == (Outcome.THROTTLED, None)
    assert "Too many requests" in result.detail


def test_orange_over_its_rate_asks_for_the_wait_its_retry_after_names(orange_fake):
    orange_fake.rate_limit = 1
    gateway = orange_gateway(orange_fake)
    assert gateway.send(sms()).outcome is Outcome.SENT
    result = gateway.send(sms())
    assert (result.outcome, result.retry_after) == (Outcome.THROTTLED, 1.0)
    assert orange_fake.throttled == 1 and len(orange_fake.accepted) == 1


def test_orange_token_endpoint_down_is_transient(orange_fake):
    orange_fake.fail_next(1)
    result = orange_gateway(orange_fake).send(sms())
    assert result.outcome is Outcome.TRANSIENT
    assert "HTTP 503" in result.detail


# --- Clickatell -----------------------------------------------------------------------------------

def test_clickatell_accepts_and_returns_the_api_message_id(clickatell_fake):
    result = clickatell_gateway(clickatell_fake).send(sms())
    assert result.outcome is Outcome.SENT
    assert result.provider_id == clickatell_fake.accepted[0]["apiMessageId"]
    assert clickatell_fake.accepted[0]["to"] == NUMBER.removeprefix("+")


def test_clickatell_bad_api_key_is_permanent_in_its_own_words(clickatell_fake):
    result = clickatell_gateway(clickatell_fake, api_key="wrong").send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert result.detail.startswith("Clickatell: Invalid or missing integration API Key.")
    assert "(error 108)" in result.detail


def test_clickatell_invalid_destination_is_permanent(clickatell_fake):
    result = clickatell_gateway(clickatell_fake).send(sms(UNROUTABLE))
    assert result.outcome is Outcome.PERMANENT
    assert "Invalid destination address." in result.detail and "(error 105)" in result.detail


def test_clickatell_sender_on_a_one_way_integration_is_permanent(clickatell_fake):
    result = clickatell_gateway(clickatell_fake, sender="+41790000000").send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert "Invalid FROM number." in result.detail


@pytest.mark.parametrize(("callback", "expected"), [
    ({"messageId": "abc", "statusCode": 4, "status": "RECEIVED_BY_RECIPIENT"}, ("abc", "delivered")),
    ({"messageId": "abc", "status": "004"}, ("abc", "delivered")),
    ({"messageId": "abc", "status": "ERROR_DELIVERING_MESSAGE"}, ("abc", "failed")),
    ({"messageId": "abc", "statusCode": "10", "statusDescription": "Message expired"}, ("abc", "failed")),
    ({"messageId": "abc", "statusDescription": "Routing error"}, ("abc", "failed")),
    ({"messageId": "abc", "statusCode": 3, "status": "DELIVERED_TO_GATEWAY"}, ("abc", None)),
    ({"messageId": "abc", "status": "QUEUED"}, ("abc", None)),
])
def test_clickatell_status_callback_is_read(callback, expected):
    receipt = clickatell.parse_receipt(callback)
    assert (receipt.provider_id, receipt.status) == expected


@pytest.mark.parametrize("callback", [
    {"status": "RECEIVED_BY_RECIPIENT"}, {}, [], {"messageId": ["abc"], "statusCode": 4},
    {"messageId": "x" * 129, "statusCode": 4}, {"messageId": {"$ne": None}, "statusCode": 4},
])
def test_a_clickatell_callback_naming_no_message_is_read_as_none(callback):
    assert clickatell.parse_receipt(callback) is None


@pytest.mark.parametrize("code", ["9" * 5000, "²", "٤", 10**400, True, ["4"], {"code": 4}, "4" * 70])
def test_a_clickatell_status_code_the_api_never_sends_changes_nothing(code):
    receipt = clickatell.parse_receipt({"messageId": "abc", "statusCode": code})
    assert receipt is not None and receipt.status is None


def test_a_clickatell_failure_keeps_its_own_words():
    receipt = clickatell.parse_receipt({"messageId": "abc", "statusCode": "009", "status": "ROUTING_ERROR",
                                        "statusDescription": "Routing error"})
    assert (receipt.status, receipt.detail) == ("failed", "Clickatell: Routing error (status 009)")


# --- Vonage ---------------------------------------------------------------------------------------

def test_vonage_accepts_and_returns_the_message_id(vonage_fake):
    result = vonage_gateway(vonage_fake).send(sms())
    assert result.outcome is Outcome.SENT
    sent = vonage_fake.accepted[0]
    assert result.provider_id == sent["message-id"]
    assert (sent["to"], sent["from"], sent["type"]) == ("41791234567", "Provisio", "text")


def test_vonage_text_outside_gsm_goes_as_unicode(vonage_fake):
    result = vonage_gateway(vonage_fake).send(sms(body="Lien d’activation — Провизио"))
    assert result.outcome is Outcome.SENT
    assert vonage_fake.accepted[0]["type"] == "unicode"


def test_vonage_bad_credentials_are_permanent_in_their_own_words(vonage_fake):
    result = vonage_gateway(vonage_fake, api_secret="wrong").send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert result.detail == "Vonage: Bad Credentials (status 4)"


def test_vonage_unroutable_number_is_permanent(vonage_fake):
    result = vonage_gateway(vonage_fake).send(sms(UNROUTABLE))
    assert result.outcome is Outcome.PERMANENT
    assert result.detail == "Vonage: Unroutable message - rejected (status 6)"


def test_vonage_missing_sender_is_permanent(vonage_fake):
    result = vonage_gateway(vonage_fake, sender="").send(sms())
    assert result.outcome is Outcome.PERMANENT
    assert result.detail == "Vonage: Missing from param (status 2)"


def test_vonage_throttling_is_a_wait_of_the_milliseconds_its_text_names(vonage_fake):
    vonage_fake.fail_next(1, "throttle")
    result = vonage_gateway(vonage_fake).send(sms())
    assert (result.outcome, result.retry_after) == (Outcome.THROTTLED, 1.0)
    assert "(status 1)" in result.detail


def test_vonage_over_its_rate_names_the_wait_until_the_next_free_slot(vonage_fake):
    vonage_fake.rate_limit = 2
    gateway = vonage_gateway(vonage_fake)
    assert [gateway.send(sms()).outcome for _ in range(2)] == [Outcome.SENT, Outcome.SENT]
    result = gateway.send(sms())
    assert result.outcome is Outcome.THROTTLED and 0 < result.retry_after <= 1.0
    assert vonage_fake.throttled == 1 and len(vonage_fake.accepted) == 2


def test_clickatell_over_its_rate_is_a_wait_of_its_retry_after(clickatell_fake):
    clickatell_fake.rate_limit = 1
    gateway = clickatell_gateway(clickatell_fake)
    assert gateway.send(sms()).outcome is Outcome.SENT
    result = gateway.send(sms())
    assert (result.outcome, result.retry_after) == (Outcome.THROTTLED, 1.0)
    assert "Too many requests" in result.detail and len(clickatell_fake.accepted) == 1


@pytest.mark.parametrize(("header", "expected"), [
    ("3", 3.0), ("0.5", 0.5), ("999999", 3600.0), ("soon", None), ("", None), ("-4", None)])
def test_a_retry_after_header_is_read_as_seconds_and_capped(header, expected):
    response = requests.Response()
    response.headers["Retry-After"] = header
    assert sms_http.retry_after(response) == expected


def test_a_retry_after_date_is_read_as_the_seconds_until_it():
    response = requests.Response()
    response.headers["Retry-After"] = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= sms_http.retry_after(response) <= 30


@pytest.mark.parametrize(("settings", "expected"), [({}, 30.0), ({"rate": "5"}, 5.0), ({"rate": "x"}, 30.0)])
def test_a_gateways_send_rate_is_its_setting_or_the_providers_documented_one(settings, expected):
    assert VonageGateway({"api_key": "k", "api_secret": "s", **settings}).rate == expected


@pytest.mark.parametrize(("receipt", "expected"), [
    ({"msisdn": "41791234567", "messageId": "0A00", "status": "delivered", "err-code": "0"},
     ("0A00", "delivered")),
    ({"messageId": "0A00", "status": "failed", "err-code": "1"}, ("0A00", "failed")),
    ({"messageId": "0A00", "status": "expired"}, ("0A00", "failed")),
    ({"messageId": "0A00", "status": "rejected"}, ("0A00", "failed")),
    ({"messageId": "0A00", "status": "accepted"}, ("0A00", None)),
    ({"messageId": "0A00", "status": "buffered"}, ("0A00", None)),
    ({"messageId": "0A00", "status": "unknown"}, ("0A00", None)),
])
def test_vonage_delivery_receipt_is_read(receipt, expected):
    parsed = vonage.parse_receipt(receipt)
    assert (parsed.provider_id, parsed.status) == expected


def test_a_vonage_receipt_without_a_message_id_is_read_as_none():
    assert vonage.parse_receipt({"status": "delivered"}) is None


def test_a_vonage_failure_keeps_its_error_code():
    parsed = vonage.parse_receipt({"messageId": "0A00", "status": "failed", "err-code": "6"})
    assert parsed.detail == "Vonage: failed (err-code 6)"


def test_vonage_signature_matches_the_published_example():
    # The example Vonage's own client libraries test against: MD5 hash, secret "secret".
    params = {"a": "1", "b": "2", "timestamp": "1461605396", "sig": "6af838ef94998832dbfc29020b564830"}
    assert vonage.signature_valid(params, "secret", "md5hash")
    assert not vonage.signature_valid({**params, "b": "3"}, "secret", "md5hash")
    assert not vonage.signature_valid(params, "other", "md5hash")
    assert not vonage.signature_valid({k: v for k, v in params.items() if k != "sig"}, "secret", "md5hash")


# --- What every gateway shares --------------------------------------------------------------------

PROVIDERS = {
    "aspsms": (lambda: FakeAspsms(userkey="USERKEY123", password=SECRET), aspsms_gateway),
    "orange": (lambda: FakeOrange(client_id="client", client_secret=SECRET, sender_address="+2250000"),
               orange_gateway),
    "clickatell": (lambda: FakeClickatell(api_key=SECRET), clickatell_gateway),
    "vonage": (lambda: FakeVonage(api_key="key", api_secret=SECRET), vonage_gateway),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request):
    """Each fake in turn, with a gateway factory pointed at it."""
    make_fake, make_gateway = PROVIDERS[request.param]
    with make_fake() as fake:
        yield fake, lambda: make_gateway(fake)


def test_service_unavailable_is_transient_and_the_retry_goes_through(provider):
    fake, gateway = provider
    fake.fail_next(1)
    result = gateway().send(sms())
    assert result.outcome is Outcome.TRANSIENT
    assert "HTTP 503" in result.detail
    assert gateway().send(sms()).outcome is Outcome.SENT
    assert len(fake.accepted) == 1


def test_provider_hanging_past_the_timeout_is_transient(provider):
    fake, gateway = provider
    fake.fail_next(1, "hang")
    result = gateway().send(sms())
    assert result.outcome is Outcome.TRANSIENT
    assert "did not answer within 0.5 s" in result.detail
    assert fake.accepted == []


def test_provider_not_listening_is_transient(provider):
    fake, gateway = provider
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = type(gateway())({"base_url": f"http://127.0.0.1:{port}"})
    result = unreachable.send(sms())
    assert result.outcome is Outcome.TRANSIENT
    assert "could not be reached (ConnectionError)" in result.detail


@pytest.mark.parametrize("number", ["0791234567", "+0791234567", "+4179", "41791234567", "+41 79 123 45 67"])
def test_number_that_is_not_international_is_refused_before_any_request(provider, number):
    fake, gateway = provider
    result = gateway().send(sms(number))
    assert result.outcome is Outcome.PERMANENT
    assert "not an international mobile number" in result.detail
    assert fake.requests == []


def test_no_result_ever_shows_a_secret(provider):
    fake, gateway = provider
    fake.fail_next(1)
    results = [gateway().send(sms()), gateway().send(sms(UNROUTABLE))]
    assert all(SECRET not in result.detail for result in results)


# --- The registry ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_for_settings_builds_the_chosen_sms_gateway_from_its_section(name):
    settings = {"sms": {"gateway": name, name: {"base_url": "http://127.0.0.1:9"}, "other": {}}}
    gateway = gateways.for_settings("sms", settings)
    assert isinstance(gateway, gateways.SMS_GATEWAYS[name])
    assert gateway.name == name
    assert gateway.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("sms_settings", [{"gateway": ""}, {}, None])
def test_for_settings_without_an_sms_gateway_says_so(sms_settings):
    with pytest.raises(LookupError, match="No SMS gateway is configured yet."):
        gateways.for_settings("sms", {"sms": sms_settings})


def test_for_settings_with_an_unknown_sms_gateway_names_the_choices():
    with pytest.raises(LookupError, match="Unknown SMS gateway 'twilio'"):
        gateways.for_settings("sms", {"sms": {"gateway": "twilio"}})


def test_default_base_urls_are_the_providers_own():
    assert AspsmsGateway({}).base_url == "https://json.aspsms.com"
    assert OrangeGateway({}).base_url == "https://api.orange.com"
    assert ClickatellGateway({}).base_url == "https://platform.clickatell.com"
    assert VonageGateway({}).base_url == "https://rest.nexmo.com"
