"""The stack can subscribe the dashboard's /hooks/sns to the alerts topic (a parameter)."""

from __future__ import annotations

import re


def test_the_hook_subscription_is_https_on_the_alerts_topic_when_given(cfn) -> None:
    (topic_id,) = cfn.of_type("AWS::SNS::Topic")
    (sub,) = [
        value
        for value in cfn.of_type("AWS::SNS::Subscription").values()
        if value["Properties"]["Protocol"] == "https"
    ]
    props = sub["Properties"]
    assert props["TopicArn"] == {"Ref": topic_id}
    assert props["Endpoint"] == {"Ref": "DashboardSnsHookUrl"}
    assert sub["Condition"] == "HasDashboardSnsHook"


def test_the_parameter_accepts_only_an_https_hook_url_or_nothing(template) -> None:
    parameter = template.to_json()["Parameters"]["DashboardSnsHookUrl"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert parameter["Default"] == "" and pattern.fullmatch("")
    assert pattern.fullmatch("https://ops.example.com/hooks/sns")
    assert not pattern.fullmatch("http://ops.example.com/hooks/sns")
