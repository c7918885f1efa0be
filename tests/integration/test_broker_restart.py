"""The local broker on disk: stopped and restarted mid-stream, it loses nothing and the
running scorer goes on by itself (issue 12, items 5 and 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition

from loop.registry import ModelRegistry
from stack import local
from tests.conftest import tweets
from tests.integration.conftest import Env, ScorerProcess, read_topic
from tests.integration.test_scorer import by_id, ids_seen

pytestmark = pytest.mark.integration

# How long the broker stays down; the scorer must wait, not exit.
DOWN_S = float(os.environ.get("ALLOOP_TEST_BROKER_DOWN_S", "8"))


def committed(broker: str, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed on ``topic`` (3 partitions), as the broker keeps them."""
    reader = KafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        found = {p: reader.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        reader.close()
    return {p: offset for p, offset in found.items() if offset is not None}


@pytest.mark.slow
def test_a_broker_restart_mid_stream_loses_nothing_and_the_scorer_resumes_alone(
    disk_stack: Path, tmp_path: Path, setfit_registry: ModelRegistry
) -> None:
    address = local.StackState.load(disk_stack).services["broker"].address
    assert address
    env = Env(broker=address, home=tmp_path / "home", registry=setfit_registry.root)
    docs = tweets("train", limit=400)
    before, after = docs[:300], docs[300:]
    env.produce(before)
    scorer = ScorerProcess(env, "restart", tmp_path / "scorer.log")
    try:
        scorer.start()
        read_topic(env.broker, env.tagged, lambda rs: len(rs) >= 60, timeout=180)
        group = f"{env.prefix}-scorer"
        offsets_before = committed(address, group, env.raw)
        assert sum(offsets_before.values()) > 0, "the scorer committed before the restart"

        restarted = local.restart_broker(disk_stack, down_s=DOWN_S)
        assert restarted.address == address, "the broker comes back on the address clients know"
        admin = KafkaAdminClient(bootstrap_servers=address, client_id="test-admin")
        try:
            assert {env.raw, env.tagged} <= set(admin.list_topics()), "topics survived"
        finally:
            admin.close()
        offsets_after = committed(address, group, env.raw)
        for tp, offset in offsets_before.items():
            assert offsets_after.get(tp, -1) >= offset, f"the committed offset of {tp} survived"

        env.produce(after)
        wanted = {d.id for d in docs}
        records = read_topic(
            address, env.tagged, lambda rs: ids_seen(rs) >= wanted, timeout=300, settle=2
        )
        grouped = by_id(records)
        assert set(grouped) == wanted, f"{len(wanted - set(grouped))} documents lost"
        for doc_id, copies in grouped.items():
            assert len(set(copies)) == 1, f"copies of {doc_id} differ"
        assert scorer.process is not None and scorer.process.poll() is None, "the scorer lives"
    finally:
        if scorer.process is not None and scorer.process.poll() is None:
            scorer.kill()
