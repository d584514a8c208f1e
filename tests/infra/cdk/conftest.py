"""One CDK synthesis per test session, shared by every invariant test in this folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.stack import EventOpsStack, build_app
from infra.topology import TOPOLOGY

Resource = dict[str, Any]


@dataclass(frozen=True)
class Cfn:
    """Look-ups over the synthesized template that several tests share."""

    resources: dict[str, Resource]

    def of_type(self, cfn_type: str) -> dict[str, Resource]:
        return {key: value for key, value in self.resources.items() if value["Type"] == cfn_type}

    def props(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id]["Properties"])

    @staticmethod
    def arn_of(logical_id: str) -> dict[str, Any]:
        """How the template refers to a resource's ARN."""
        return {"Fn::GetAtt": [logical_id, "Arn"]}

    def queue_id(self, queue_name: str) -> str:
        (logical_id,) = [
            key
            for key, queue in self.of_type("AWS::SQS::Queue").items()
            if queue["Properties"].get("QueueName") == queue_name
        ]
        return logical_id

    def source_queue_ids(self) -> set[str]:
        """Queues an EventBridge rule delivers to: the consumers' source queues."""
        ids = set()
        for rule in self.of_type("AWS::Events::Rule").values():
            for target in rule["Properties"].get("Targets", []):
                getatt = (
                    target["Arn"].get("Fn::GetAtt") if isinstance(target["Arn"], dict) else None
                )
                if getatt and self.resources[getatt[0]]["Type"] == "AWS::SQS::Queue":
                    ids.add(getatt[0])
        return ids

    def dlq_ids(self) -> set[str]:
        """Queues named as ``deadLetterTargetArn`` by some queue's RedrivePolicy."""
        return {
            queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            for queue in self.of_type("AWS::SQS::Queue").values()
            if "RedrivePolicy" in queue["Properties"]
        }

    def dashboard_statements(self) -> list[dict[str, Any]]:
        (policy,) = [
            value
            for value in self.of_type("AWS::IAM::ManagedPolicy").values()
            if value["Properties"].get("ManagedPolicyName") == TOPOLOGY.name("dashboard")
        ]
        return list(policy["Properties"]["PolicyDocument"]["Statement"])

    def all_statements(self) -> list[dict[str, Any]]:
        """Every identity-policy statement: Lambda roles and the dashboard policy."""
        statements: list[dict[str, Any]] = []
        for value in self.resources.values():
            if value["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                statements.extend(value["Properties"]["PolicyDocument"]["Statement"])
        return statements

    @staticmethod
    def actions(statement: dict[str, Any]) -> list[str]:
        value = statement["Action"]
        return [value] if isinstance(value, str) else list(value)

    @staticmethod
    def statement_resources(statement: dict[str, Any]) -> list[Any]:
        value = statement["Resource"]
        return value if isinstance(value, list) else [value]

    def statements_with(self, action: str, statements: list[dict[str, Any]]) -> list[Any]:
        """The resources of every Allow statement in ``statements`` that grants ``action``."""
        found: list[Any] = []
        for statement in statements:
            if statement["Effect"] == "Allow" and action in self.actions(statement):
                found.extend(self.statement_resources(statement))
        return found


@pytest.fixture(scope="session")
def cdk_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def stack(cdk_outdir: Path) -> EventOpsStack:
    """Synthesize once (a few seconds: jsii runs the CDK in Node.js)."""
    app, stack = build_app(cdk_outdir)
    app.synth()
    return stack


@pytest.fixture(scope="session")
def template(stack: EventOpsStack) -> Template:
    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def cfn(template: Template) -> Cfn:
    return Cfn(resources=dict(template.to_json()["Resources"]))


@pytest.fixture(scope="session")
def template_file(stack: EventOpsStack, cdk_outdir: Path) -> Path:
    return cdk_outdir / stack.template_file
