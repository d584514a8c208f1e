"""Every event type's JSON Schema is registered; discovery watches the bus."""

from __future__ import annotations

from infra import schemas
from infra.topology import TOPOLOGY


def test_one_schema_registered_per_event_type(cfn):
    registered = {
        s["Properties"]["SchemaName"]: s["Properties"]
        for s in cfn.of_type("AWS::EventSchemas::Schema").values()
    }
    assert set(registered) == {schemas.schema_name(t) for t in schemas.EVENT_MODELS}
    for detail_type in schemas.EVENT_MODELS:
        props = registered[schemas.schema_name(detail_type)]
        assert (props["Type"], props["Content"]) == (
            "JSONSchemaDraft4",
            schemas.json_schema_text(detail_type),
        )


def test_schemas_live_in_the_topology_registry(cfn):
    (registry_id,) = cfn.of_type("AWS::EventSchemas::Registry")
    assert cfn.props(registry_id)["RegistryName"] == TOPOLOGY.schema_registry_name
    assert {
        str(s["Properties"]["RegistryName"])
        for s in cfn.of_type("AWS::EventSchemas::Schema").values()
    } == {str({"Fn::GetAtt": [registry_id, "RegistryName"]})}


def test_schema_discoverer_watches_the_bus(cfn):
    (bus_id,) = cfn.of_type("AWS::Events::EventBus")
    (discoverer,) = cfn.of_type("AWS::EventSchemas::Discoverer").values()
    assert discoverer["Properties"]["SourceArn"] == cfn.arn_of(bus_id)
