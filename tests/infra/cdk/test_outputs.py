"""Stack outputs: what a deployer needs to point the dashboard at the stack."""

from __future__ import annotations


def test_outputs_name_bus_archive_topic_and_dashboard_role(template):
    outputs = template.to_json()["Outputs"]
    assert {"BusName", "BusArn", "ArchiveArn", "AlertsTopicArn", "DashboardRoleArn"} <= set(outputs)
    assert outputs["DashboardRoleArn"]["Value"]["Fn::GetAtt"][1] == "Arn"


def test_template_has_no_bootstrap_version_rule_or_cdk_metadata(template):
    body = template.to_json()
    assert "BootstrapVersion" not in body.get("Parameters", {})
    assert not template.find_resources("AWS::CDK::Metadata")
