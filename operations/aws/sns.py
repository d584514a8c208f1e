"""Amazon SNS: publishing the dashboard's notifications (the only SNS call it makes)."""

from __future__ import annotations

from operations.aws.client import client
from operations.aws.errors import translate

# SNS subjects: at most 100 printable ASCII characters, no line breaks.
MAX_SUBJECT = 100


def publish(topic_arn: str, subject: str, message: str) -> str:
    """Publish ``message`` to ``topic_arn``; returns the MessageId."""
    # https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
    subject = "".join(c for c in subject if c.isascii() and c.isprintable())[:MAX_SUBJECT]
    try:
        response = client("sns").publish(
            TopicArn=topic_arn, Subject=subject or "eventops", Message=message
        )
    except Exception as exc:
        raise translate(exc, "Publish") from exc
    return str(response["MessageId"])
