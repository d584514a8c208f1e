"""POST /hooks/sns: SNS signatures (versions 1 and 2), the certificate URL, configured
topics, subscription confirmation, and alarm transitions recorded once."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.test import Client

from operations import sns_messages
from operations.models import AlarmTransition

pytestmark = pytest.mark.django_db
TOPIC = "arn:aws:sns:eu-west-1:123456789012:eventops-alarms"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
HOOK = "/hooks/sns"


def _key_and_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, PEM = _key_and_cert()


@pytest.fixture(autouse=True)
def sns_setup(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    settings.EVENTOPS_SNS_TOPIC_ARNS = [TOPIC]
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return PEM

    monkeypatch.setattr(sns_messages, "fetch_certificate", fetch)
    return fetched


def alarm_message(state: str = "ALARM", at: str = "2026-05-01T12:00:00.000+0000") -> str:
    return json.dumps(
        {
            "AlarmName": "orders-dlq-not-empty",
            "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:orders-dlq-not-empty",
            "NewStateValue": state,
            "OldStateValue": "OK",
            "NewStateReason": "Threshold crossed: 1 datapoint [3.0]",
            "StateChangeTime": at,
        }
    )


def signed(message: dict[str, Any], version: str = "1", key: rsa.RSAPrivateKey = KEY) -> dict:
    message = {"SignatureVersion": version, "SigningCertURL": CERT_URL, **message}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    text = sns_messages.string_to_sign(message).encode()
    message["Signature"] = base64.b64encode(key.sign(text, padding.PKCS1v15(), algorithm)).decode()
    return message


def notification(**overrides: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": TOPIC,
        "Subject": 'ALARM: "orders-dlq-not-empty"',
        "Message": alarm_message(),
        "Timestamp": "2026-05-01T12:00:01.000Z",
        **overrides,
    }


def post(message: dict[str, Any]) -> Any:
    return Client().post(
        HOOK,
        json.dumps(message),
        content_type="text/plain",
        headers={"x-amz-sns-message-type": str(message.get("Type"))},
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_alarm_notification_is_recorded(version: str) -> None:
    response = post(signed(notification(), version))
    row = AlarmTransition.objects.get()
    assert response.status_code == 200 and response.json() == {"recorded": True}
    assert (row.alarm_name, row.old_state, row.new_state) == ("orders-dlq-not-empty", "OK", "ALARM")
    assert row.changed_at == datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_a_notification_without_subject_is_signed_without_it() -> None:
    message = notification()
    del message["Subject"]
    assert post(signed(message)).status_code == 200


def test_the_same_message_twice_is_recorded_once() -> None:
    message = signed(notification())
    post(message)
    again = post(message)
    assert again.json() == {"recorded": False} and AlarmTransition.objects.count() == 1


def test_the_certificate_is_fetched_once(sns_setup: list[str]) -> None:
    post(signed(notification()))
    post(signed(notification(MessageId="m-2", Message=alarm_message("OK"))))
    assert sns_setup == [CERT_URL]


def test_a_forged_message_is_403_and_records_nothing() -> None:
    other_key, _ = _key_and_cert()
    response = post(signed(notification(), key=other_key))
    assert response.status_code == 403 and not AlarmTransition.objects.exists()


def test_a_tampered_message_is_403() -> None:
    message = signed(notification())
    message["Message"] = alarm_message("OK")
    assert post(message).status_code == 403 and not AlarmTransition.objects.exists()


def test_an_unsigned_message_is_403() -> None:
    message = signed(notification())
    del message["Signature"]
    assert post(message).status_code == 403


def test_an_unknown_signature_version_is_403() -> None:
    message = signed(notification())
    message["SignatureVersion"] = "3"
    assert post(message).status_code == 403


def test_an_unknown_topic_is_403() -> None:
    message = signed(notification(TopicArn=TOPIC.replace("eventops-alarms", "other")))
    assert post(message).status_code == 403 and not AlarmTransition.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
    ],
)
def test_a_certificate_url_off_the_sns_hosts_is_403(url: str, sns_setup: list[str]) -> None:
    message = signed({**notification(), "SigningCertURL": url})
    assert post(message).status_code == 403 and sns_setup == []


def test_china_regions_are_sns_hosts() -> None:
    assert sns_messages.sns_host_region("https://sns.cn-north-1.amazonaws.com.cn/x.pem")


def test_no_configured_topic_refuses_everything(settings: Any) -> None:
    settings.EVENTOPS_SNS_TOPIC_ARNS = []
    assert post(signed(notification())).status_code == 403


def confirmation(
    url: str = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
) -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "c-1",
        "Token": "t",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe...",
        "SubscribeURL": url,
        "Timestamp": "2026-05-01T12:00:00.000Z",
    }


def test_a_subscription_to_a_configured_topic_is_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    visited: list[str] = []
    monkeypatch.setattr(sns_messages, "_get", visited.append)
    response = post(signed(confirmation()))
    assert response.status_code == 200 and visited == [confirmation()["SubscribeURL"]]


def test_a_subscribe_url_on_another_host_is_not_visited(monkeypatch: pytest.MonkeyPatch) -> None:
    visited: list[str] = []
    monkeypatch.setattr(sns_messages, "_get", visited.append)
    response = post(signed(confirmation("https://sns.us-east-1.amazonaws.com/?Action=x")))
    assert response.status_code == 403 and visited == []


def test_get_is_405() -> None:
    assert Client().get(HOOK).status_code == 405


def test_garbage_is_400() -> None:
    assert Client().post(HOOK, "not json", content_type="text/plain").status_code == 400


def test_string_to_sign_of_a_notification_is_as_aws_documents() -> None:
    message = {"Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Subject": "s"}
    message.update({"Message": "m", "Timestamp": "ts", "Signature": "x", "SignatureVersion": "1"})
    assert sns_messages.string_to_sign(message) == (
        "Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"
    )


def test_string_to_sign_of_a_confirmation_is_as_aws_documents() -> None:
    message = {**confirmation("u"), "Message": "m", "MessageId": "id", "Timestamp": "ts"}
    assert sns_messages.string_to_sign(message) == (
        f"Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nts\nToken\nt\nTopicArn\n{TOPIC}\n"
        "Type\nSubscriptionConfirmation\n"
    )
