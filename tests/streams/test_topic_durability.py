"""Topics are created with the durability settings the runbook relies on."""

from __future__ import annotations

from streams.topics import durability_config


def test_min_insync_replicas_follows_the_replication_factor() -> None:
    assert durability_config(1)["min.insync.replicas"] == "1"
    assert durability_config(2)["min.insync.replicas"] == "1"
    assert durability_config(3)["min.insync.replicas"] == "2"
    assert durability_config(5)["min.insync.replicas"] == "2"
    for replication in (1, 3):
        assert durability_config(replication)["unclean.leader.election.enable"] == "false"
