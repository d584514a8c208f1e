"""The traffic simulator's identifiers: repeatable for a seed, and never repeated in a run."""

from __future__ import annotations

from typing import Any

from infra.devstack.traffic import TrafficConfig, TrafficSimulator


class RecordingApi:
    """The producer API, recording what the simulator asks it to create."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_order(self, dynamodb: Any, table: str, **order: Any) -> None:
        self.created.append(order)


def simulator(seed: int | None, api: RecordingApi) -> TrafficSimulator:
    return TrafficSimulator(
        lambda service: None,  # type: ignore[arg-type]  # the recording API needs no client
        TrafficConfig(rate=2, seed=seed),
        api=api,
    )


def test_a_seeded_run_never_repeats_an_order_or_correlation_id_far_past_a_thousand() -> None:
    api = RecordingApi()
    traffic = simulator(7, api)

    for _ in range(5_000):
        traffic.new_order()

    assert len({o["order_id"] for o in api.created}) == 5_000
    assert len({o["correlation_id"] for o in api.created}) == 5_000


def test_the_same_seed_gives_the_same_orders_and_another_seed_others() -> None:
    runs = {}
    for name, seed in (("first", 3), ("again", 3), ("other", 4)):
        api = RecordingApi()
        traffic = simulator(seed, api)
        for _ in range(20):
            traffic.new_order()
        runs[name] = [(o["order_id"], o["correlation_id"], o["lines"]) for o in api.created]

    assert runs["first"] == runs["again"]
    assert runs["first"] != runs["other"]
