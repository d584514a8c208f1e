"""Lambdas: traced, Python 3.11 with Powertools, partial batch failures, handlers present."""

from __future__ import annotations

import ast
from pathlib import Path

from infra.constructs import function_timeout_s
from infra.stack import POWERTOOLS_LAYER_NAME
from infra.topology import TOPOLOGY


def _functions(cfn):
    return {
        f["Properties"]["FunctionName"]: f["Properties"]
        for f in cfn.of_type("AWS::Lambda::Function").values()
    }


def test_every_lambda_has_active_tracing(cfn):
    functions = _functions(cfn)
    assert len(functions) == len(TOPOLOGY.consumers) + 2
    assert {name: f.get("TracingConfig") for name, f in functions.items()} == dict.fromkeys(
        functions, {"Mode": "Active"}
    )


def test_every_lambda_runs_python_311_with_the_powertools_layer(cfn):
    for name, function in _functions(cfn).items():
        assert function["Runtime"] == "python3.11", name
        (layer,) = function["Layers"]
        assert POWERTOOLS_LAYER_NAME in layer["Fn::Sub"][0], name


def test_sqs_event_sources_report_batch_item_failures(cfn):
    mappings = [
        m["Properties"]
        for m in cfn.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] in cfn.source_queue_ids()
    ]
    assert len(mappings) == len(TOPOLOGY.consumers)
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)


def test_outbox_stream_source_retries_bisects_and_reports_failures(cfn):
    (mapping,) = [
        m["Properties"]
        for m in cfn.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True and mapping["MaximumRetryAttempts"] > 0
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == cfn.arn_of(
        cfn.queue_id(TOPOLOGY.outbox_failures_queue)
    )


def test_consumers_get_their_environment(cfn):
    functions = _functions(cfn)
    for consumer in TOPOLOGY.consumers:
        variables = functions[TOPOLOGY.function_name(consumer)]["Environment"]["Variables"]
        assert variables["CONSUMER_NAME"] == variables["POWERTOOLS_SERVICE_NAME"] == consumer.name
        assert {"IDEMPOTENCY_TABLE", "EVENT_BUS_NAME", "ORDERS_TABLE"} <= set(variables)


def test_consumer_timeout_fits_inside_queue_visibility_timeout(cfn):
    functions = _functions(cfn)
    for consumer in TOPOLOGY.consumers:
        timeout = functions[TOPOLOGY.function_name(consumer)]["Timeout"]
        assert timeout == function_timeout_s(consumer.visibility_timeout_s)
        assert timeout <= consumer.visibility_timeout_s


def _asset_dir(cfn, cdk_outdir):
    """The staged asset the functions deploy (``asset.<hash>`` next to the template)."""
    (key,) = {f["Code"]["S3Key"] for f in _functions(cfn).values()}
    return cdk_outdir / f"asset.{key.removesuffix('.zip')}"


def test_code_asset_holds_only_the_lambda_sources(cfn, cdk_outdir):
    staged = _asset_dir(cfn, cdk_outdir)
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {"infra/__init__.py", "infra/topology.py", "infra/schemas.py"} < files
    assert all(
        f.startswith("infra/functions/") and f.endswith(".py")
        for f in files - {"infra/__init__.py", "infra/topology.py", "infra/schemas.py"}
    )


def test_every_handler_is_defined_in_the_code_asset(cfn, cdk_outdir):
    staged = _asset_dir(cfn, cdk_outdir)
    for name, function in _functions(cfn).items():
        module, attribute = function["Handler"].rsplit(".", 1)
        source = Path(staged, *module.split(".")).with_suffix(".py")
        assert source.is_file(), f"{name}: {source} is missing"
        tree = ast.parse(source.read_text())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)} | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert attribute in defined, f"{name}: {function['Handler']} not defined"
