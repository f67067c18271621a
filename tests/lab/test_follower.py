"""The route follower's pure parts: a DescribeRouteTables answer mapped to kernel routes, and the diff
that decides which `ip route` commands run (tests/lab/follower.py). No root, no moto."""

from __future__ import annotations

import argparse

import pytest

from tests.lab.follower import BLACKHOLE_HOP, Hop, ip_command, kernel_routes, parse_target, plan

ENI, NATGW = "eni-0123", "nat-0456"
NAT_HOP, GW_HOP = Hop("198.18.10.1", "p0"), Hop("198.18.12.1", "p3")
TARGETS = {ENI: NAT_HOP, NATGW: GW_HOP}


def table(default_target: dict, *extra: dict) -> list[dict]:
    return [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"},
            {"DestinationCidrBlock": "0.0.0.0/0", "State": "active", **default_target}, *extra]


CANARY = {"DestinationCidrBlock": "198.19.3.1/32", "NetworkInterfaceId": ENI, "State": "active"}


def test_the_default_route_to_the_nat_instance_eni_goes_via_the_nat_host_and_the_local_route_is_skipped():
    routes = kernel_routes(table({"NetworkInterfaceId": ENI}, CANARY), TARGETS)
    assert routes == {"default": (ENI, NAT_HOP), "198.19.3.1/32": (ENI, NAT_HOP)}


def test_after_a_failover_only_the_default_route_moves_to_the_gateway_host():
    before = kernel_routes(table({"NetworkInterfaceId": ENI}, CANARY), TARGETS)
    after = kernel_routes(table({"NatGatewayId": NATGW}, CANARY), TARGETS)
    assert plan(before, after) == [("replace", "default", GW_HOP)]


def test_an_unchanged_table_plans_nothing():
    routes = kernel_routes(table({"NatGatewayId": NATGW}, CANARY), TARGETS)
    assert plan(routes, dict(routes)) == []


def test_the_first_poll_installs_every_route_default_first():
    desired = kernel_routes(table({"NetworkInterfaceId": ENI}, CANARY), TARGETS)
    desired = {"198.19.3.1/32": desired["198.19.3.1/32"], "default": desired["default"]}  # canary listed first
    ops = plan({}, desired)
    assert [op[:2] for op in ops] == [("replace", "default"), ("replace", "198.19.3.1/32")]


def test_a_route_gone_from_the_table_is_deleted_from_the_kernel():
    before = kernel_routes(table({"NetworkInterfaceId": ENI}, CANARY), TARGETS)
    after = kernel_routes(table({"NetworkInterfaceId": ENI}), TARGETS)
    assert plan(before, after) == [("delete", "198.19.3.1/32", None)]


def test_an_unknown_target_or_a_route_aws_reports_as_blackhole_becomes_a_kernel_blackhole():
    unknown = kernel_routes(table({"NetworkInterfaceId": "eni-someone-else"}), TARGETS)
    assert unknown["default"] == ("eni-someone-else", BLACKHOLE_HOP)
    dead = kernel_routes(table({"NetworkInterfaceId": ENI, "State": "blackhole"}), TARGETS)
    assert dead["default"][1].is_blackhole


def test_ip_commands_name_the_namespace_hop_device_and_source():
    assert ip_command("ns1", "replace", "default", GW_HOP, "198.18.10.10") == [
        "ip", "-n", "ns1", "route", "replace", "default", "via", "198.18.12.1", "dev", "p3", "src", "198.18.10.10"]
    assert ip_command("ns1", "replace", "default", BLACKHOLE_HOP, "198.18.10.10") == [
        "ip", "-n", "ns1", "route", "replace", "blackhole", "default"]
    assert ip_command("ns1", "delete", "198.19.3.1/32", None, "") == ["ip", "-n", "ns1", "route", "delete", "198.19.3.1/32"]


def test_a_target_spec_needs_id_hop_and_device():
    assert parse_target("eni-1=198.18.10.1@p0") == ("eni-1", Hop("198.18.10.1", "p0"))
    for bad in ("eni-1", "eni-1=198.18.10.1", "=1.2.3.4@p0", "eni-1=@p0"):
        with pytest.raises(argparse.ArgumentTypeError, match="ID=VIA@DEV"):
            parse_target(bad)
