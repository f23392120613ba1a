"""Standard Webhooks and Grafana HMAC verification: the published test vector passes, and every
way a delivery can be wrong is a ``SignatureError`` (401) naming the header at fault."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from axtrace.intake.auth import authenticate
from axtrace.intake.signatures import (
    SignatureError,
    sign_grafana_hmac,
    sign_standard_webhook,
    verify_grafana_hmac,
    verify_standard_webhook,
)
from axtrace.settings import Settings, SourceSettings

# The published Standard Webhooks test vector (standard-webhooks/standard-webhooks, libraries/*).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"


def headers(**changes: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }
    base.update({name.replace("_", "-"): value for name, value in changes.items()})
    return {name: value for name, value in base.items() if value is not None}


def failure(secret: str, given: dict[str, str], body: bytes = BODY, now: float = TIMESTAMP
            ) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_standard_webhook(secret, given, body, now=now)
    return caught.value


def test_signing_reproduces_the_published_vector() -> None:
    assert sign_standard_webhook(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert sign_standard_webhook(SECRET, MSG_ID, TIMESTAMP, BODY.decode()) == SIGNATURE


def test_the_published_vector_verifies_and_returns_the_webhook_id() -> None:
    assert verify_standard_webhook(SECRET, headers(), BODY, now=TIMESTAMP) == MSG_ID


def test_the_secret_prefix_is_optional() -> None:
    plain = SECRET.removeprefix("whsec_")
    assert verify_standard_webhook(plain, headers(), BODY, now=TIMESTAMP) == MSG_ID


def test_header_names_are_case_insensitive() -> None:
    given = {name.title(): value for name, value in headers().items()}
    assert verify_standard_webhook(SECRET, given, BODY, now=TIMESTAMP) == MSG_ID


def test_any_of_several_signatures_may_match_for_key_rotation() -> None:
    other = sign_standard_webhook(OTHER_SECRET, MSG_ID, TIMESTAMP, BODY)
    given = headers(webhook_signature=f"{other} v1a,c29tZXRoaW5n {SIGNATURE}")
    assert verify_standard_webhook(SECRET, given, BODY, now=TIMESTAMP) == MSG_ID


@pytest.mark.parametrize("skew", [-300, 300])
def test_timestamps_up_to_five_minutes_either_way_are_accepted(skew: int) -> None:
    assert verify_standard_webhook(SECRET, headers(), BODY, now=TIMESTAMP + skew) == MSG_ID


@pytest.mark.parametrize(
    ("skew", "reason"), [(301, "old"), (-301, "future"), (86400, "old")]
)
def test_timestamps_outside_five_minutes_are_refused(skew: int, reason: str) -> None:
    error = failure(SECRET, headers(), now=TIMESTAMP + skew)
    assert error.field == "webhook-timestamp"
    assert reason in error.message


def test_a_tampered_body_is_refused() -> None:
    error = failure(SECRET, headers(), body=b'{"test": 2432232315}')
    assert error.field == "webhook-signature"


def test_a_wrong_secret_is_refused() -> None:
    assert failure(OTHER_SECRET, headers()).field == "webhook-signature"


def test_a_changed_webhook_id_is_refused() -> None:
    assert failure(SECRET, headers(webhook_id="msg_other")).field == "webhook-signature"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused_naming_it(missing: str) -> None:
    given = {name: value for name, value in headers().items() if name != missing}
    error = failure(SECRET, given)
    assert error.field == missing
    assert "missing" in error.message


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("v1,not*base64!", "base64"),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", "base64"),
        ("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,<base64>"),
        ("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "no v1 signature"),
        ("   ", "missing"),
    ],
)
def test_a_malformed_signature_header_is_refused(signature: str, reason: str) -> None:
    error = failure(SECRET, headers(webhook_signature=signature))
    assert error.field == "webhook-signature"
    assert reason in error.message


@pytest.mark.parametrize(
    "stamp", ["1614265330.5", "soon", "-1614265330", "1e9", "99999999999999999"]
)
def test_a_timestamp_that_is_not_integer_seconds_is_refused(stamp: str) -> None:
    assert failure(SECRET, headers(webhook_timestamp=stamp)).field == "webhook-timestamp"


def test_a_secret_that_is_not_base64_is_a_signature_error_not_a_crash() -> None:
    assert failure("whsec_not base64!!", headers()).field == "secret"


def test_signature_errors_are_401() -> None:
    assert SignatureError.status_code == 401


# --- Grafana HMAC ---------------------------------------------------------------------------

GRAFANA_SECRET = "grafana-contact-point-secret"
GRAFANA_BODY = b'{"receiver":"AxTrace","status":"firing","alerts":[]}'
NOW = 1_746_520_000


def grafana(secret: str = GRAFANA_SECRET, body: bytes = GRAFANA_BODY, **given: str) -> None:
    stamp = "X-Grafana-Alerting-Timestamp" if "X-Grafana-Alerting-Timestamp" in given else None
    verify_grafana_hmac(secret, given, body, now=NOW, timestamp_header=stamp)


def test_grafana_body_only_signature_is_hex_hmac_sha256_of_the_body() -> None:
    signature = sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY)
    assert len(signature) == 64
    grafana(**{"X-Grafana-Alerting-Signature": signature})
    grafana(**{"x-grafana-alerting-signature": signature.upper()})


def test_grafana_timestamped_signature_covers_timestamp_colon_body() -> None:
    signature = sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY, NOW)
    grafana(**{"X-Grafana-Alerting-Signature": signature, "X-Grafana-Alerting-Timestamp": str(NOW)})


def test_grafana_tampered_body_or_wrong_secret_is_refused() -> None:
    given = {"X-Grafana-Alerting-Signature": sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY)}
    for secret, body in [(GRAFANA_SECRET, GRAFANA_BODY + b" "), ("other", GRAFANA_BODY)]:
        with pytest.raises(SignatureError) as caught:
            grafana(secret, body, **given)
        assert caught.value.field == "X-Grafana-Alerting-Signature"


def test_grafana_stale_timestamp_is_refused() -> None:
    stale = NOW - 301
    given = {
        "X-Grafana-Alerting-Signature": sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY, stale),
        "X-Grafana-Alerting-Timestamp": str(stale),
    }
    with pytest.raises(SignatureError) as caught:
        grafana(**given)
    assert caught.value.field == "X-Grafana-Alerting-Timestamp"


def test_grafana_missing_timestamp_when_one_is_configured_is_refused() -> None:
    signature = sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY)
    with pytest.raises(SignatureError) as caught:
        verify_grafana_hmac(GRAFANA_SECRET, {"X-Grafana-Alerting-Signature": signature},
                            GRAFANA_BODY, now=NOW, timestamp_header="X-Grafana-Alerting-Timestamp")
    assert caught.value.field == "X-Grafana-Alerting-Timestamp"


@pytest.mark.parametrize("signature", [None, "", "zz" * 32, "abc", "sha256=" + "0" * 64])
def test_grafana_missing_or_malformed_signature_is_refused(signature: str | None) -> None:
    given = {} if signature is None else {"X-Grafana-Alerting-Signature": signature}
    with pytest.raises(SignatureError) as caught:
        grafana(**given)
    assert caught.value.field == "X-Grafana-Alerting-Signature"


def test_grafana_timestamp_too_far_in_the_future_is_refused() -> None:
    ahead = NOW + 301
    given = {
        "X-Grafana-Alerting-Signature": sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY, ahead),
        "X-Grafana-Alerting-Timestamp": str(ahead),
    }
    with pytest.raises(SignatureError, match="in the future") as caught:
        grafana(**given)
    assert caught.value.field == "X-Grafana-Alerting-Timestamp"


@pytest.mark.parametrize(("age", "accepted"), [(0, True), (299, True), (301, False),
                                               (3600, False)])
def test_a_grafana_delivery_replayed_outside_the_window_is_refused_by_the_intake(
    age: int, accepted: bool,
) -> None:
    """Through the intake's own check, as configured for the source: a delivery captured with
    its signature and timestamp and sent again later is refused once it is over five minutes
    old (the timestamp is signed, so it cannot be renewed without the secret)."""
    settings = Settings(intake_token=None, sources={"grafana": SourceSettings(
        grafana_secret=SecretStr(GRAFANA_SECRET),
        grafana_timestamp_header="X-Grafana-Alerting-Timestamp")})
    sent = int(time.time()) - age
    captured = {"X-Grafana-Alerting-Signature": sign_grafana_hmac(GRAFANA_SECRET, GRAFANA_BODY,
                                                                  sent),
                "X-Grafana-Alerting-Timestamp": str(sent)}
    renewed = {**captured, "X-Grafana-Alerting-Timestamp": str(int(time.time()))}
    if accepted:
        authenticate("grafana", captured, GRAFANA_BODY, settings)
    else:
        with pytest.raises(SignatureError, match="old") as caught:
            authenticate("grafana", captured, GRAFANA_BODY, settings)
        assert caught.value.field == "X-Grafana-Alerting-Timestamp"
        with pytest.raises(SignatureError, match="does not match"):
            authenticate("grafana", renewed, GRAFANA_BODY, settings)


# ------------------------------------------- agreement with the reference library (issue 12.5)
# Verification stays ours: the reference library (standardwebhooks) decodes the body as UTF-8
# (a non-UTF-8 body raises UnicodeDecodeError), raises ValueError on a malformed signature
# list, checks against the wall clock only, and its errors do not say which header is wrong.
# So the library is the oracle: whatever it signs, we accept, and what we sign, it accepts.


def test_what_the_reference_library_signs_verifies_here_and_the_other_way_round() -> None:
    from datetime import UTC, datetime

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from standardwebhooks import Webhook

    @settings(max_examples=200, deadline=None)
    @given(key=st.binary(min_size=1, max_size=64),
           msg_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                          min_size=1, max_size=40),
           body=st.text(max_size=500), stamp=st.integers(min_value=0, max_value=2**33))
    def agree(key: bytes, msg_id: str, body: str, stamp: int) -> None:
        import base64

        secret = "whsec_" + base64.b64encode(key).decode()
        theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body)
        ours = sign_standard_webhook(secret, msg_id, stamp, body.encode())
        assert ours == theirs
        sent = {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                "webhook-signature": theirs}
        assert verify_standard_webhook(secret, sent, body.encode(), now=stamp) == msg_id

    agree()


def test_the_reference_librarys_own_vector_verifies_in_both() -> None:
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    sent_at = datetime.fromtimestamp(TIMESTAMP, UTC)
    assert Webhook(SECRET).sign(MSG_ID, sent_at, BODY.decode()) == SIGNATURE
    assert verify_standard_webhook(SECRET, headers(), BODY, now=TIMESTAMP) == MSG_ID
