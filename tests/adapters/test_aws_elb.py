"""ElbTarget against moto's server: real ELBv2 API calls over loopback HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from shipdeck.adapters.aws_elb import CANARY_TAG, EPOCH_TAG, ElbTarget
from shipdeck.core.errors import AdapterError, ConfigError
from shipdeck.core.ports import ReleaseSpec, StaleEpoch, TrafficWeights
from tests.support.moto_server import free_port

REGION = "us-east-1"


@dataclass
class Alb:
    elb: Any
    ec2: Any
    endpoint: str
    listener: str
    blue: str
    green: str
    dns: str

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "listener_arn": self.listener,
            "blue_target_group_arn": self.blue,
            "green_target_group_arn": self.green,
            "region": REGION,
            "endpoint_url": self.endpoint,
            **extra,
        }

    def forwarded(self, rule: str | None = None) -> str:
        if rule:
            actions = self.elb.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
        else:
            listener = self.elb.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]
            actions = listener["DefaultActions"]
        (forward,) = [a for a in actions if a["Type"] == "forward"]
        return str(forward["TargetGroupArn"])

    def weights(self, rule: str | None = None) -> dict[str, int] | None:
        """The forward's weighted groups as ELB reports them, None for a plain forward."""
        if rule:
            actions = self.elb.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
        else:
            listener = self.elb.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]
            actions = listener["DefaultActions"]
        (forward,) = [a for a in actions if a["Type"] == "forward"]
        if "ForwardConfig" not in forward:
            return None
        groups = forward["ForwardConfig"]["TargetGroups"]
        return {g["TargetGroupArn"]: g["Weight"] for g in groups}

    def tags(self, arn: str) -> dict[str, str]:
        described = self.elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
        return {t["Key"]: t["Value"] for t in described}


@pytest.fixture()
def alb(moto_endpoint: str) -> Iterator[Alb]:
    """A VPC, two subnets, an ALB, blue and green target groups and a listener on blue."""
    ec2 = boto3.client("ec2", endpoint_url=moto_endpoint, region_name=REGION)
    elb = boto3.client("elbv2", endpoint_url=moto_endpoint, region_name=REGION)
    name = uuid.uuid4().hex[:12]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elb.create_load_balancer(Name=f"lb-{name}", Subnets=subnets)["LoadBalancers"][0]
    groups = [
        elb.create_target_group(
            Name=f"{color}-{name}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        for color in ("blue", "green")
    ]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups[0]}],
    )["Listeners"][0]["ListenerArn"]
    yield Alb(elb, ec2, moto_endpoint, listener, groups[0], groups[1], lb["DNSName"])
    elb.close()
    ec2.close()


def release(version: str) -> ReleaseSpec:
    return ReleaseSpec(app="chat-api", version=version, commit="c" * 40, digest=f"sha256:{version}")


def test_switch_back_and_forth_and_live_color_follows(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    assert target.live_color() == "blue"
    for epoch, color in enumerate(["green", "blue", "green", "green", "blue"], start=1):
        target.switch(color, epoch=epoch)  # type: ignore[arg-type]
        assert target.live_color() == color
        assert alb.forwarded() == (alb.green if color == "green" else alb.blue)
    target.close()


def test_rule_mode_switches_the_rule_and_leaves_the_default_action(alb: Alb) -> None:
    rule = alb.elb.create_rule(
        ListenerArn=alb.listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": alb.blue}],
    )["Rules"][0]["RuleArn"]
    target = ElbTarget("chat-api", "prod", alb.settings(rule_arn=rule))
    target.switch("green", epoch=1)
    assert target.live_color() == "green"
    assert alb.forwarded(rule) == alb.green
    assert alb.forwarded() == alb.blue  # the listener's own default did not move
    tags = alb.elb.describe_tags(ResourceArns=[rule])["TagDescriptions"][0]["Tags"]
    assert {"Key": EPOCH_TAG, "Value": "1"} in tags


def test_stale_epoch_is_refused_and_traffic_stays(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    target.switch("green", epoch=7)
    other_runner = ElbTarget("chat-api", "prod", alb.settings())
    with pytest.raises(StaleEpoch, match="epoch 6 is older than 7"):
        other_runner.switch("blue", epoch=6)
    assert target.live_color() == "green"
    target.switch("blue", epoch=7)  # the current epoch may keep working
    assert target.live_color() == "blue"


def test_stage_records_the_release_and_health_follows_targets(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    assert target.staged_version("green") is None
    target.stage("green", release("2.0.0"), epoch=1)
    assert target.staged_version("green") == "2.0.0"
    assert target.staged_version("blue") is None

    empty = target.health("green")
    assert not empty.ok and "no targets registered" in empty.detail

    alb.elb.register_targets(TargetGroupArn=alb.green, Targets=[{"Id": "10.0.1.5", "Port": 8080}])
    healthy = target.health("green")
    assert healthy.ok and healthy.detail == "1/1 targets healthy"


def test_health_reports_a_target_that_is_not_healthy(alb: Alb) -> None:
    image = alb.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = alb.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    # instance targets need an instance-type group
    group = alb.elb.create_target_group(
        Name=f"inst-{uuid.uuid4().hex[:10]}",
        Protocol="HTTP",
        Port=80,
        VpcId=alb.ec2.describe_vpcs()["Vpcs"][0]["VpcId"],
        TargetType="instance",
    )["TargetGroups"][0]["TargetGroupArn"]
    alb.elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance["InstanceId"]}])
    alb.ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    target = ElbTarget("chat-api", "prod", {**alb.settings(), "green_target_group_arn": group})
    health = target.health("green")
    assert not health.ok
    assert health.detail.startswith("0/1 targets healthy; " + instance["InstanceId"])


def test_stop_idle_refuses_the_live_color_and_restart_is_unsupported(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    with pytest.raises(AdapterError, match="refusing to stop blue: it is live"):
        target.stop_idle("blue", epoch=1)
    target.stop_idle("green", epoch=1)  # nothing to stop, recorded as a no-op
    with pytest.raises(AdapterError, match="cannot restart"):
        target.restart(epoch=1)


def test_missing_target_group_errors_with_one_line(alb: Alb) -> None:
    account_part = alb.green.split(":targetgroup/")[0]
    missing = f"{account_part}:targetgroup/gone/0123456789abcdef"
    target = ElbTarget("chat-api", "prod", {**alb.settings(), "green_target_group_arn": missing})
    for call in (
        lambda: target.stage("green", release("2.0.0"), epoch=1),
        lambda: target.switch("green", epoch=1),
        lambda: target.health("green"),
    ):
        with pytest.raises(AdapterError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("aws-elb target chat-api/prod")
        assert "TargetGroupNotFound" in message
    assert target.live_color() == "blue"


def test_traffic_split_or_foreign_group_is_an_error_not_a_guess(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    alb.elb.modify_listener(
        ListenerArn=alb.listener,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": alb.blue, "Weight": 50},
                        {"TargetGroupArn": alb.green, "Weight": 50},
                    ]
                },
            }
        ],
    )
    with pytest.raises(AdapterError, match="traffic is split"):
        target.live_color()
    target.switch("green", epoch=1)  # a switch ends the split
    assert target.live_color() == "green"


def test_endpoint_is_the_url_setting_or_the_listener_address(alb: Alb) -> None:
    assert ElbTarget("a", "e", alb.settings(url="https://chat.example")).endpoint() == (
        "https://chat.example"
    )
    assert ElbTarget("a", "e", alb.settings()).endpoint() == f"http://{alb.dns}:80"


def test_unreachable_endpoint_errors_with_one_line(alb: Alb) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    target = ElbTarget("chat-api", "prod", alb.settings(endpoint_url=dead, max_attempts=1))
    with pytest.raises(AdapterError) as info:
        target.live_color()
    message = str(info.value)
    assert message.startswith("aws-elb target chat-api/prod: ")
    assert "Could not connect" in message and "\n" not in message


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"settings\.listener_arn is required"):
        ElbTarget("a", "e", {"blue_target_group_arn": "x", "green_target_group_arn": "y"})
    with pytest.raises(ConfigError, match="different target groups"):
        ElbTarget(
            "a",
            "e",
            {"listener_arn": "l", "blue_target_group_arn": "x", "green_target_group_arn": "x"},
        )


# --- canary weights ----------------------------------------------------------------------------


def split(target: ElbTarget) -> TrafficWeights:
    weights = target.weights()
    assert weights is not None
    return weights


def test_weights_are_set_on_the_listener_and_read_back(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    assert split(target).weight() == 0
    split(target).set_weight("green", 25, epoch=1)
    assert alb.weights() == {alb.blue: 75, alb.green: 25}
    assert alb.tags(alb.listener)[CANARY_TAG] == "green"
    # Another runner reads the same split from AWS, live color included.
    other = ElbTarget("chat-api", "prod", alb.settings())
    assert split(other).weight() == 25 and other.live_color() == "blue"
    for percent in (50, 100):  # even at 50/50 or all on the canary, blue is live
        split(target).set_weight("green", percent, epoch=1)
        assert (target.live_color(), split(target).weight()) == ("blue", percent)
    assert alb.weights() == {alb.blue: 0, alb.green: 100}
    split(target).set_weight("green", 0, epoch=1)
    assert alb.weights() is None and alb.forwarded() == alb.blue  # a plain forward again
    assert CANARY_TAG not in alb.tags(alb.listener)
    assert (target.live_color(), split(target).weight()) == ("blue", 0)


def test_a_switch_ends_the_split(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    split(target).set_weight("green", 100, epoch=1)
    target.switch("green", epoch=1)  # green already has all the traffic: still a real switch
    assert alb.weights() is None and alb.forwarded() == alb.green
    assert CANARY_TAG not in alb.tags(alb.listener)
    assert (target.live_color(), split(target).weight()) == ("green", 0)


def test_rule_mode_weighs_the_rule_and_leaves_the_default_action(alb: Alb) -> None:
    rule = alb.elb.create_rule(
        ListenerArn=alb.listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": alb.blue}],
    )["Rules"][0]["RuleArn"]
    target = ElbTarget("chat-api", "prod", alb.settings(rule_arn=rule))
    split(target).set_weight("green", 10, epoch=1)
    assert alb.weights(rule) == {alb.blue: 90, alb.green: 10}
    assert alb.tags(rule)[CANARY_TAG] == "green" and CANARY_TAG not in alb.tags(alb.listener)
    assert alb.forwarded() == alb.blue and alb.weights() is None
    assert (target.live_color(), split(target).weight()) == ("blue", 10)
    target.switch("green", epoch=1)
    assert alb.forwarded(rule) == alb.green and alb.weights(rule) is None


def test_a_stale_epoch_cannot_change_the_weight(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    split(target).set_weight("green", 25, epoch=7)
    stalled = ElbTarget("chat-api", "prod", alb.settings())
    with pytest.raises(StaleEpoch, match="epoch 6 is older than 7"):
        split(stalled).set_weight("green", 0, epoch=6)
    assert alb.weights() == {alb.blue: 75, alb.green: 25}


def test_a_weight_needs_a_live_color_other_than_the_canary(alb: Alb) -> None:
    target = ElbTarget("chat-api", "prod", alb.settings())
    with pytest.raises(AdapterError, match="cannot send 10% to blue as a canary: it is live"):
        split(target).set_weight("blue", 10, epoch=1)
    with pytest.raises(
        AdapterError, match="canary weight must be a percentage from 0 to 100, got 150"
    ):
        split(target).set_weight("green", 150, epoch=1)
    split(target).set_weight("green", 10, epoch=1)
    with pytest.raises(AdapterError, match="refusing to stop green: it takes 10% of traffic"):
        target.stop_idle("green", epoch=1)
    assert alb.weights() == {alb.blue: 90, alb.green: 10}
