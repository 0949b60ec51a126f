"""Blue/green behind an AWS Application Load Balancer: the listener (or one listener rule)
forwards to the blue or the green target group, and switching rewrites that forward action.

Teams deploy to the target groups out of band (their own pipeline, ASG, ECS); shipdeck moves
traffic, checks target health, and records what it staged as tags on the target group.

Fencing lives in a tag (`shipdeck:epoch`) on the resource being switched (the rule when
`rule_arn` is set, else the listener), not in a local file: runners on CI and on different
bastions share one state database, and only a mark on the AWS resource itself is seen by all of
them. ELB tags have no compare-and-swap, so two runners that read the tag in the same instant can
both pass; the core's lease is the primary guard and the tag stops the runner that stalled past it.

Canary: set_weight writes a forward action with weighted target groups (ForwardConfig: the live
group 100-N, the canary's N) and tags the switched resource `shipdeck:canary=COLOR` first, so
live_color stays right while both groups take traffic (even at 50/50 or 0/100): the live color
is the one that is not the canary. Weight 0 and a switch write a plain forward again and drop the
tag; a forward to both groups without the tag is someone else's split, an error as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shipdeck.adapters.aws import AwsClient, aws_errors
from shipdeck.adapters.canary_split import split_problem, weight_problem
from shipdeck.adapters.fencing import check_epoch
from shipdeck.core.errors import AdapterError, ConfigError
from shipdeck.core.ports import Color, Health, ReleaseSpec, TrafficWeights, other_color

log = logging.getLogger(__name__)

EPOCH_TAG = "shipdeck:epoch"
VERSION_TAG = "shipdeck:version"
DIGEST_TAG = "shipdeck:digest"
CANARY_TAG = "shipdeck:canary"


def _forward_weights(actions: list[dict[str, Any]]) -> dict[str, int]:
    """Target group ARN -> weight in the forward action (a plain forward is one group of 1);
    a ForwardConfig wins over a TargetGroupArn beside it, as in ELB."""
    for action in actions:
        if action.get("Type") != "forward":
            continue
        weighted = action.get("ForwardConfig", {}).get("TargetGroups")
        if weighted:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in weighted}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 1}
    return {}


def _forwarded_groups(actions: list[dict[str, Any]]) -> list[str]:
    """Target groups that receive traffic from an action list (weight 0 receives none)."""
    return sorted(arn for arn, weight in _forward_weights(actions).items() if weight > 0)


class ElbTarget:
    """One app in one environment behind an ALB listener or listener rule."""

    def __init__(self, app: str, env: str, settings: Mapping[str, Any]) -> None:
        self.app = app
        self.env = env
        self.label = f"aws-elb target {app}/{env}"

        def required(key: str) -> str:
            value = settings.get(key)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{self.label}: settings.{key} is required (an ARN)")
            return value

        self.listener_arn = required("listener_arn")
        self.groups: dict[Color, str] = {
            "blue": required("blue_target_group_arn"),
            "green": required("green_target_group_arn"),
        }
        if self.groups["blue"] == self.groups["green"]:
            raise ConfigError(f"{self.label}: blue and green must be different target groups")
        self.rule_arn: str | None = settings.get("rule_arn") or None
        self.url: str | None = settings.get("url")
        self._elb = AwsClient(
            "elbv2",
            self.label,
            region=settings.get("region"),
            endpoint_url=settings.get("endpoint_url"),
            profile=settings.get("profile"),
            max_attempts=int(settings.get("max_attempts", 3)),
        )

    # --- plumbing ---

    @property
    def _switched(self) -> str:
        return self.rule_arn or self.listener_arn

    def _actions(self) -> list[dict[str, Any]]:
        with aws_errors(self.label):
            if self.rule_arn:
                rules = self._elb().describe_rules(RuleArns=[self.rule_arn])["Rules"]
                return list(rules[0].get("Actions", []))
            listeners = self._elb().describe_listeners(ListenerArns=[self.listener_arn])
            return list(listeners["Listeners"][0].get("DefaultActions", []))

    def _tags(self, arn: str) -> dict[str, str]:
        with aws_errors(self.label):
            described = self._elb().describe_tags(ResourceArns=[arn])["TagDescriptions"]
        return {t["Key"]: t["Value"] for d in described for t in d.get("Tags", [])}

    def _fence(self, epoch: int) -> dict[str, str]:
        """Refuse an epoch older than the one recorded on the switched resource; record newer.
        Returns the resource's tags as they were."""
        tags = self._tags(self._switched)
        raw = tags.get(EPOCH_TAG)
        try:
            seen = int(raw) if raw is not None else None
        except ValueError:
            raise AdapterError(f"{self.label}: tag {EPOCH_TAG}={raw!r} is not a number") from None
        if check_epoch(self.label, epoch, seen):
            with aws_errors(self.label):
                self._elb().add_tags(
                    ResourceArns=[self._switched], Tags=[{"Key": EPOCH_TAG, "Value": str(epoch)}]
                )
        return tags

    def _split(self, actions: list[dict[str, Any]]) -> tuple[Color | None, int]:
        """(live color, percent the other color gets). A forward to both groups is read with
        the canary tag: the live color is the one that is not the canary."""
        weights = _forward_weights(actions)
        if len(weights) == 2 and set(weights) == set(self.groups.values()):
            tag = self._tags(self._switched).get(CANARY_TAG)
            canary = next((c for c in self.groups if c == tag), None)
            if canary is not None:
                total = sum(weights.values())
                share = weights[self.groups[canary]] * 100 / total if total > 0 else 0
                return other_color(canary), round(share)
        groups = _forwarded_groups(actions)
        if not groups:
            return None, 0
        if len(groups) > 1:
            split = ", ".join(groups)
            raise AdapterError(f"{self.label}: traffic is split between {split}; expected one")
        return self._color_of(groups[0]), 0

    def _forward(self, actions: list[dict[str, Any]], forward: dict[str, Any], what: str) -> None:
        """Replace the terminal action with `forward`, keeping authenticate actions in front of
        it; ELB applies the change atomically and lets requests finish."""
        terminal = [a for a in actions if not str(a.get("Type", "")).startswith("authenticate")]
        forward = {"Type": "forward", **forward}
        if terminal and "Order" in terminal[0]:
            forward["Order"] = terminal[0]["Order"]
        kept = [a for a in actions if a not in terminal]
        with aws_errors(f"{self.label}: {what}"):
            if self.rule_arn:
                self._elb().modify_rule(RuleArn=self.rule_arn, Actions=[*kept, forward])
            else:
                self._elb().modify_listener(
                    ListenerArn=self.listener_arn, DefaultActions=[*kept, forward]
                )

    def _drop_canary_tag(self, tags: Mapping[str, str]) -> None:
        if CANARY_TAG in tags:
            with aws_errors(self.label):
                self._elb().remove_tags(ResourceArns=[self._switched], TagKeys=[CANARY_TAG])

    def _color_of(self, arn: str) -> Color:
        for color, group in self.groups.items():
            if group == arn:
                return color
        raise AdapterError(f"{self.label}: traffic goes to {arn}, which is neither blue nor green")

    def _existing_group(self, color: Color) -> str:
        """The color's target group ARN, checked to exist before traffic or tags point at it."""
        group = self.groups[color]
        with aws_errors(f"{self.label}: {color} target group"):
            self._elb().describe_target_groups(TargetGroupArns=[group])
        return group

    # --- Target ---

    def live_color(self) -> Color | None:
        return self._split(self._actions())[0]

    def staged_version(self, color: Color) -> str | None:
        return self._tags(self.groups[color]).get(VERSION_TAG)

    def endpoint(self) -> str | None:
        """The configured url, else the listener's own address on the load balancer's DNS name."""
        if self.url is None:
            with aws_errors(self.label):
                listener = self._elb().describe_listeners(ListenerArns=[self.listener_arn])[
                    "Listeners"
                ][0]
                balancer = self._elb().describe_load_balancers(
                    LoadBalancerArns=[listener["LoadBalancerArn"]]
                )["LoadBalancers"][0]
            scheme = "https" if listener.get("Protocol") == "HTTPS" else "http"
            self.url = f"{scheme}://{balancer['DNSName']}:{listener['Port']}"
        return self.url

    def color_endpoint(self, color: Color) -> str:
        raise AdapterError(
            f"{self.label}: a target group has no URL of its own (only the listener has one), "
            "so it cannot be evaluated before the switch; use a local or nginx target"
        )

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        """Nothing to start: the team deployed to the target group. Check it exists and record
        which release it holds, so staged_version reads it back from AWS."""
        self._fence(epoch)
        group = self._existing_group(color)
        with aws_errors(f"{self.label}: {color} target group"):
            self._elb().add_tags(
                ResourceArns=[group],
                Tags=[
                    {"Key": VERSION_TAG, "Value": release.version},
                    {"Key": DIGEST_TAG, "Value": release.digest},
                ],
            )

    def health(self, color: Color) -> Health:
        with aws_errors(f"{self.label}: {color} target group"):
            found = self._elb().describe_target_health(TargetGroupArn=self.groups[color])
        targets = found.get("TargetHealthDescriptions", [])
        if not targets:
            return Health(ok=False, detail=f"no targets registered in the {color} target group")
        bad = [t for t in targets if t.get("TargetHealth", {}).get("State") != "healthy"]
        detail = f"{len(targets) - len(bad)}/{len(targets)} targets healthy"
        if bad:
            first = bad[0]
            state = first.get("TargetHealth", {})
            where = f"{first['Target']['Id']}:{first['Target'].get('Port', '')}".rstrip(":")
            reason = state.get("Reason") or "no reason given"
            detail += f"; {where} is {state.get('State', 'unknown')} ({reason})"
        return Health(ok=not bad, detail=detail)

    def switch(self, color: Color, epoch: int) -> None:
        """A plain forward to `color`'s group, which ends any canary split (see _forward)."""
        tags = self._fence(epoch)
        actions = self._actions()
        group = self._existing_group(color)
        if list(_forward_weights(actions)) != [group]:
            self._forward(actions, {"TargetGroupArn": group}, f"switch to {color}")
            log.info("%s: traffic switched to %s (%s)", self.label, color, group)
        self._drop_canary_tag(tags)

    def stop_idle(self, color: Color, epoch: int) -> None:
        """The instances behind a target group belong to the team's own tooling: refuse the live
        color, otherwise record that there was nothing to stop."""
        self._fence(epoch)
        live, share = self._split(self._actions())
        if live == color:
            raise AdapterError(f"{self.label}: refusing to stop {color}: it is live")
        if share > 0:
            raise AdapterError(
                f"{self.label}: refusing to stop {color}: it takes {share}% of traffic as a canary"
            )
        log.info(
            "%s: stop_idle %s is a no-op (targets are managed outside shipdeck)", self.label, color
        )

    def restart(self, epoch: int) -> None:
        self._fence(epoch)
        raise AdapterError(
            f"{self.label}: cannot restart: targets are managed outside shipdeck; "
            "restart them with the tooling that registered them"
        )

    def weights(self) -> TrafficWeights:
        """The listener (or rule) splits traffic between the groups by weight (see set_weight)."""
        return self

    # --- TrafficWeights ---

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        """Tag the canary, then forward to both groups by weight; 0 forwards to the live group
        alone and then drops the tag (each order leaves live_color right if a run dies between)."""
        if why := weight_problem(percent):
            raise AdapterError(f"{self.label}: {why}")
        tags = self._fence(epoch)
        actions = self._actions()
        live = self._split(actions)[0]
        if why := split_problem(percent, canary_color, live):
            raise AdapterError(f"{self.label}: {why}")
        assert live is not None  # split_problem refuses a split with nothing live
        if percent == 0:
            if list(_forward_weights(actions)) != [self.groups[live]]:
                self._forward(actions, {"TargetGroupArn": self.groups[live]}, "weight 0%")
            self._drop_canary_tag(tags)
            return
        canary = self._existing_group(canary_color)
        if tags.get(CANARY_TAG) != canary_color:
            with aws_errors(self.label):
                self._elb().add_tags(
                    ResourceArns=[self._switched], Tags=[{"Key": CANARY_TAG, "Value": canary_color}]
                )
        groups = [
            {"TargetGroupArn": self.groups[live], "Weight": 100 - percent},
            {"TargetGroupArn": canary, "Weight": percent},
        ]
        self._forward(actions, {"ForwardConfig": {"TargetGroups": groups}}, f"weight {percent}%")
        log.info("%s: %d%% of traffic to %s (%s)", self.label, percent, canary_color, canary)

    def weight(self) -> int:
        return self._split(self._actions())[1]

    def close(self) -> None:
        self._elb.close()
