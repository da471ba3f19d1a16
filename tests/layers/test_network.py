"""Network layer, in every region: private VPC, endpoints, security groups, flow logs, contract.

The checks that guard the payment path's isolation are plain functions returning a list of
problems, so a test can run them on the real synth (expect none) and on a mutated copy.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cdktf import App, TerraformOutput, TerraformStack

from layers.base import BackendSettings, stack_name
from layers.config import ConfigError, load_config
from layers.network import ENI_RELEASE_TIMEOUT, INTERFACE_ENDPOINT_SERVICES, NetworkStack
from tests.synthesized import Synthesized

CONFIG = load_config(environ={})
REGIONS = CONFIG.regions
#: What the Lambda code calls (issue 3, docs/design.md): each needs an interface endpoint.
REQUIRED_INTERFACE_SERVICES = {"sqs", "sns", "kms", "logs", "monitoring", "sts"}
#: Resources that open a path to or from the internet.
INTERNET_TYPES = (
    "aws_internet_gateway",
    "aws_egress_only_internet_gateway",
    "aws_nat_gateway",
    "aws_eip",
    "aws_route",
    "aws_vpn_gateway",
)
HTTPS = 443

_REF = re.compile(r"^\$\{(?P<expr>[^{}]+)\}$")
_REMOTE = re.compile(
    r"^data\.terraform_remote_state\.cross-stack-reference-input-(?P<stack>[\w-]+)\.outputs\.(?P<output>[\w-]+)$"
)


def resolve(app: Synthesized, stack: str, value: Any) -> tuple[str, str]:
    """Follow a ``${...}`` reference through cross-stack outputs to ``(stack, expression)`` where it is defined."""
    match = _REF.match(value) if isinstance(value, str) else None
    if match is None:
        return stack, str(value)
    remote = _REMOTE.match(match["expr"])
    if remote is None:
        return stack, match["expr"]
    origin = remote["stack"]
    return resolve(app, origin, app.stacks[origin]["output"][remote["output"]]["value"])


def ref(type_: str, name: str, attribute: str = "id") -> str:
    """The expression Terraform uses for a resource attribute in the same stack."""
    return f"{type_}.{name}.{attribute}"


def of_type(app: Synthesized, stack: str, type_: str) -> dict[str, dict[str, Any]]:
    """Resources of one type in one stack, by name."""
    return {r.name: r.body for r in app.resources(type_, stack=stack)}


def network(region: str) -> str:
    return stack_name("network", region)


def only(items: dict[str, Any]) -> tuple[str, Any]:
    assert len(items) == 1, sorted(items)
    return next(iter(items.items()))


def expr(value: str) -> str:
    """``${a.b.c}`` -> ``a.b.c``."""
    match = _REF.match(value)
    assert match, value
    return match["expr"]


# --- problem finders ---------------------------------------------------------------------------


def internet_path_problems(app: Synthesized, region: str) -> list[str]:
    """Anything that would let traffic of ``region``'s VPC reach the internet, or the internet reach it."""
    stack = network(region)
    problems = [f"{r.address} exists" for t in INTERNET_TYPES for r in app.resources(t, stack=stack)]
    for name, body in of_type(app, stack, "aws_route_table").items():
        if body.get("route") != []:
            problems.append(
                f"aws_route_table.{name}: route must be [] (Terraform-owned, no route out), not {body.get('route')!r}"
            )
    for name, body in of_type(app, stack, "aws_subnet").items():
        if body.get("map_public_ip_on_launch") not in (None, False):
            problems.append(f"aws_subnet.{name} maps public IPs")
    return problems


def lambda_egress_problems(app: Synthesized, region: str) -> list[str]:
    """The Lambda SG may only send HTTPS to the VPC CIDR and to the DynamoDB gateway endpoint's prefix list."""
    stack = network(region)
    lambda_sg = ref("aws_security_group", "lambda-sg")
    problems = []
    if any(b.get("egress") or b.get("ingress") for b in of_type(app, stack, "aws_security_group").values()):
        problems.append("inline security group rules: use one rule resource per rule")
    for kind in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule"):
        for name, body in of_type(app, stack, kind).items():
            if expr(body["security_group_id"]) == lambda_sg:
                problems.append(f"{kind}.{name}: the Lambda SG admits nothing")
    (gateway,) = [
        name for name, body in of_type(app, stack, "aws_vpc_endpoint").items() if body["vpc_endpoint_type"] == "Gateway"
    ]
    allowed = {
        ("cidr_ipv4", CONFIG.vpc_cidrs[region]),
        ("prefix_list_id", f"${{{ref('aws_vpc_endpoint', gateway, 'prefix_list_id')}}}"),
    }
    seen = set()
    for name, body in of_type(app, stack, "aws_vpc_security_group_egress_rule").items():
        if expr(body["security_group_id"]) != lambda_sg:
            continue
        targets = {
            (k, body[k])
            for k in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id", "referenced_security_group_id")
            if k in body
        }
        if (body.get("ip_protocol"), body.get("from_port"), body.get("to_port")) != ("tcp", HTTPS, HTTPS):
            problems.append(f"egress rule {name}: not TCP 443 only")
        if len(targets) != 1 or not targets <= allowed:
            problems.append(f"egress rule {name}: target {sorted(targets)} is neither the VPC CIDR nor DynamoDB")
        seen |= targets
    if seen != allowed:
        problems.append(f"Lambda SG egress misses {sorted(allowed - seen)}")
    return problems


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_vpc_uses_the_regions_cidr_with_dns(synth: Synthesized, region: str) -> None:
    _, vpc = only(of_type(synth, network(region), "aws_vpc"))
    assert vpc["cidr_block"] == CONFIG.vpc_cidrs[region]
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True


@pytest.mark.parametrize("region", REGIONS)
def test_private_subnets_sit_in_distinct_zones_inside_the_vpc(synth: Synthesized, region: str) -> None:
    subnets = of_type(synth, network(region), "aws_subnet")
    assert len(subnets) >= 2
    vpc = ipaddress.ip_network(CONFIG.vpc_cidrs[region])
    cidrs = [ipaddress.ip_network(s["cidr_block"]) for s in subnets.values()]
    assert all(c.subnet_of(vpc) for c in cidrs), cidrs
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :]), cidrs
    # Pinned zone IDs (the same physical zones in every account), one subnet each, no name lookups.
    zones = [s["availability_zone_id"] for s in subnets.values()]
    assert sorted(zones) == sorted(CONFIG.availability_zone_ids[region])
    assert len(set(zones)) == len(zones) >= 2
    assert all("availability_zone" not in s for s in subnets.values())
    assert "aws_availability_zones" not in synth.stacks[network(region)].get("data", {})


def test_zone_ids_follow_the_config(tmp_path: Path) -> None:
    zones = {"us-east-1": ["use1-az4", "use1-az6", "use1-az5"], "us-east-2": ["use2-az3", "use2-az1"]}
    config = load_config(environ={"AVAILABILITY_ZONE_IDS": json.dumps(zones)})
    app = App(outdir=str(tmp_path))
    for region in REGIONS:
        stack = NetworkStack(app, region=region, config=config, backend=BackendSettings.load())
        assert len(stack.private_subnet_ids) == len(zones[region])
    app.synth()
    for region in REGIONS:
        subnets = of_type(Synthesized(tmp_path), network(region), "aws_subnet").values()
        assert [s["availability_zone_id"] for s in subnets] == zones[region]
        assert len({s["cidr_block"] for s in subnets}) == len(zones[region])


@pytest.mark.parametrize(
    ("zones", "rule"),
    [
        ({"us-east-1": ["use1-az1", "use1-az2"]}, "needs zone IDs for region us-east-2"),
        ({"us-east-1": ["use1-az1", "use1-az2"], "us-east-2": ["use1-az1", "use2-az2"]}, "zone IDs of us-east-2"),
        ({"us-east-1": ["us-east-1a", "use1-az2"], "us-east-2": ["use2-az1", "use2-az2"]}, "zone IDs of us-east-1"),
        ({"us-east-1": ["use1-az1"], "us-east-2": ["use2-az1", "use2-az2"]}, "2 to 4 distinct"),
        ({"us-east-1": ["use1-az1", "use1-az1"], "us-east-2": ["use2-az1", "use2-az2"]}, "2 to 4 distinct"),
        ({"us-east-1": "use1-az1", "us-east-2": ["use2-az1", "use2-az2"]}, "region to zone ID list"),
    ],
)
def test_bad_zone_ids_are_refused_with_the_rule(zones: dict, rule: str) -> None:
    with pytest.raises(ConfigError, match="AVAILABILITY_ZONE_IDS") as error:
        load_config(environ={"AVAILABILITY_ZONE_IDS": json.dumps(zones)})
    assert rule in str(error.value)


@pytest.mark.parametrize("region", REGIONS)
def test_nothing_reaches_the_internet(synth: Synthesized, region: str) -> None:
    assert internet_path_problems(synth, region) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("igw", "aws_internet_gateway"),
        ("route", "route must be []"),
        ("public-ip", "maps public IPs"),
    ],
)
def test_an_internet_path_is_caught(synth: Synthesized, mutation: str, expected: str) -> None:
    region = CONFIG.secondary_region
    mutated = copy.deepcopy(synth)
    resources = mutated.stacks[network(region)]["resource"]
    if mutation == "igw":
        resources["aws_internet_gateway"] = {"igw": {"vpc_id": "${aws_vpc.vpc.id}"}}
    elif mutation == "route":
        next(iter(resources["aws_route_table"].values()))["route"] = [
            {"cidr_block": "0.0.0.0/0", "gateway_id": "igw-1"}
        ]
    else:
        next(iter(resources["aws_subnet"].values()))["map_public_ip_on_launch"] = True
    problems = internet_path_problems(mutated, region)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("region", REGIONS)
def test_every_private_route_table_has_the_dynamodb_gateway_endpoint(synth: Synthesized, region: str) -> None:
    stack = network(region)
    gateways = {
        n: b for n, b in of_type(synth, stack, "aws_vpc_endpoint").items() if b["vpc_endpoint_type"] == "Gateway"
    }
    _, gateway = only(gateways)
    assert gateway["service_name"] == f"com.amazonaws.{region}.dynamodb"
    subnet_tables = {expr(a["route_table_id"]) for a in of_type(synth, stack, "aws_route_table_association").values()}
    associated_subnets = {expr(a["subnet_id"]) for a in of_type(synth, stack, "aws_route_table_association").values()}
    assert associated_subnets == {ref("aws_subnet", n) for n in of_type(synth, stack, "aws_subnet")}
    assert {expr(t) for t in gateway["route_table_ids"]} == subnet_tables


@pytest.mark.parametrize("region", REGIONS)
def test_interface_endpoints_cover_what_the_lambdas_call(synth: Synthesized, region: str) -> None:
    stack = network(region)
    interfaces = [
        b for b in of_type(synth, stack, "aws_vpc_endpoint").values() if b["vpc_endpoint_type"] == "Interface"
    ]
    services = {b["service_name"].removeprefix(f"com.amazonaws.{region}.") for b in interfaces}
    assert services >= REQUIRED_INTERFACE_SERVICES
    assert services == set(INTERFACE_ENDPOINT_SERVICES)
    subnets = {ref("aws_subnet", n) for n in of_type(synth, stack, "aws_subnet")}
    for body in interfaces:
        assert body["private_dns_enabled"] is True, body["service_name"]
        assert {expr(s) for s in body["subnet_ids"]} == subnets, body["service_name"]
        assert [expr(g) for g in body["security_group_ids"]] == [ref("aws_security_group", "endpoint-sg")]


@pytest.mark.parametrize("region", REGIONS)
def test_data_carrying_endpoints_reach_only_this_accounts_resources(synth: Synthesized, region: str) -> None:
    endpoints = of_type(synth, network(region), "aws_vpc_endpoint")
    guarded = {b["service_name"].rsplit(".", 1)[1]: b for b in endpoints.values() if "policy" in b}
    assert set(guarded) == {"dynamodb", "sqs", "sns", "kms"}
    for service, body in guarded.items():
        (statement,) = json.loads(body["policy"])["Statement"]
        assert statement["Effect"] == "Allow", service
        assert statement["Condition"] == {
            "StringEquals": {"aws:ResourceAccount": "${data.aws_caller_identity.account.account_id}"}
        }, service


@pytest.mark.parametrize("region", REGIONS)
def test_endpoint_security_group_admits_only_https_from_the_lambda_sg(synth: Synthesized, region: str) -> None:
    stack = network(region)
    endpoint_sg = ref("aws_security_group", "endpoint-sg")
    ingress = [
        b
        for b in of_type(synth, stack, "aws_vpc_security_group_ingress_rule").values()
        if expr(b["security_group_id"]) == endpoint_sg
    ]
    assert len(ingress) == 1
    (rule,) = ingress
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", HTTPS, HTTPS)
    assert expr(rule["referenced_security_group_id"]) == ref("aws_security_group", "lambda-sg")
    assert not any(k in rule for k in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id"))
    egress = [
        b
        for b in of_type(synth, stack, "aws_vpc_security_group_egress_rule").values()
        if expr(b["security_group_id"]) == endpoint_sg
    ]
    assert egress == []


@pytest.mark.parametrize("region", REGIONS)
def test_lambda_sg_sends_only_https_to_the_vpc_and_dynamodb(synth: Synthesized, region: str) -> None:
    assert lambda_egress_problems(synth, region) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("all-traffic", "not TCP 443 only"),
        ("anywhere", "neither the VPC CIDR nor DynamoDB"),
        ("no-dynamodb", "misses"),
        ("inline", "inline security group rules"),
    ],
)
def test_a_wider_lambda_egress_is_caught(synth: Synthesized, mutation: str, expected: str) -> None:
    region = CONFIG.primary_region
    mutated = copy.deepcopy(synth)
    resources = mutated.stacks[network(region)]["resource"]
    rules = resources["aws_vpc_security_group_egress_rule"]
    if mutation == "all-traffic":
        rules["lambda-sg-https-to-vpc"] |= {"ip_protocol": "-1"}
        del rules["lambda-sg-https-to-vpc"]["from_port"], rules["lambda-sg-https-to-vpc"]["to_port"]
    elif mutation == "anywhere":
        rules["lambda-sg-https-to-vpc"]["cidr_ipv4"] = "0.0.0.0/0"
    elif mutation == "no-dynamodb":
        del rules["lambda-sg-https-to-dynamodb"]
    else:
        resources["aws_security_group"]["lambda-sg"]["egress"] = [{"cidr_blocks": ["0.0.0.0/0"]}]
    problems = lambda_egress_problems(mutated, region)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("region", REGIONS)
def test_every_security_group_and_rule_has_a_description(synth: Synthesized, region: str) -> None:
    stack = network(region)
    kinds = ("aws_security_group", "aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
    bodies = [(k, n, b) for k in kinds for n, b in of_type(synth, stack, k).items()]
    assert len(bodies) >= 5
    for kind, name, body in bodies:
        assert body.get("description"), f"{kind}.{name}"


@pytest.mark.parametrize("region", REGIONS)
def test_default_security_group_keeps_no_rule(synth: Synthesized, region: str) -> None:
    _, default = only(of_type(synth, network(region), "aws_default_security_group"))
    assert expr(default["vpc_id"]) == ref("aws_vpc", "vpc")
    assert not default.get("ingress")
    assert not default.get("egress")


@pytest.mark.parametrize("region", REGIONS)
def test_subnets_and_lambda_sg_wait_for_lambda_enis_on_destroy(synth: Synthesized, region: str) -> None:
    """Hyperplane ENIs linger 20-40 min after the functions go: the provider's delete defaults give up first."""
    stack = network(region)
    subnets = of_type(synth, stack, "aws_subnet")
    assert subnets
    for name, subnet in subnets.items():
        assert subnet["timeouts"] == {"delete": ENI_RELEASE_TIMEOUT}, name
    [lambda_sg] = [b for b in of_type(synth, stack, "aws_security_group").values() if "lambda" in b["name"]]
    assert lambda_sg["timeouts"] == {"delete": ENI_RELEASE_TIMEOUT}
    assert int(ENI_RELEASE_TIMEOUT.removesuffix("m")) > 40


@pytest.mark.parametrize("region", REGIONS)
def test_flow_logs_capture_all_traffic_into_an_encrypted_group_with_retention(synth: Synthesized, region: str) -> None:
    stack = network(region)
    _, flow = only(of_type(synth, stack, "aws_flow_log"))
    assert flow["traffic_type"] == "ALL"
    assert expr(flow["vpc_id"]) == ref("aws_vpc", "vpc")
    assert flow["log_destination_type"] == "cloud-watch-logs"
    group_name, group = only(of_type(synth, stack, "aws_cloudwatch_log_group"))
    assert expr(flow["log_destination"]) == ref("aws_cloudwatch_log_group", group_name, "arn")
    assert group["retention_in_days"] == CONFIG.log_retention_days
    key_name, key = only(of_type(synth, stack, "aws_kms_key"))
    assert expr(group["kms_key_id"]) == ref("aws_kms_key", key_name, "arn")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 7
    statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
    logs = [s for s in statements.values() if s["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}]
    assert len(logs) == 1
    context = logs[0]["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert context.endswith(f":log-group:{group['name']}")
    assert f":logs:{region}:" in context
    others = [s for s in statements.values() if s is not logs[0]]
    assert all(
        s["Principal"] == {"AWS": "arn:aws:iam::${data.aws_caller_identity.account.account_id}:root"} for s in others
    )


@pytest.mark.parametrize("region", REGIONS)
def test_flow_log_role_may_only_write_its_log_group(synth: Synthesized, region: str) -> None:
    stack = network(region)
    _, flow = only(of_type(synth, stack, "aws_flow_log"))
    role_name, role = only(of_type(synth, stack, "aws_iam_role"))
    assert expr(flow["iam_role_arn"]) == ref("aws_iam_role", role_name, "arn")
    (trust,) = json.loads(role["assume_role_policy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"]
    assert f":ec2:{region}:" in trust["Condition"]["ArnLike"]["aws:SourceArn"]
    _, policy = only(of_type(synth, stack, "aws_iam_role_policy"))
    assert expr(policy["role"]) == ref("aws_iam_role", role_name)
    group_arn = "${" + ref("aws_cloudwatch_log_group", "flow-log-group", "arn") + "}"
    for statement in json.loads(policy["policy"])["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(a.startswith("logs:") and "*" not in a for a in actions), actions
        assert "*" not in resources
        if actions != ["logs:DescribeLogGroups"]:
            assert set(resources) == {group_arn, f"{group_arn}:*"}, resources


@pytest.mark.parametrize("region", REGIONS)
def test_outputs_name_the_vpc_subnets_and_lambda_sg(synth: Synthesized, region: str) -> None:
    outputs = synth.stacks[network(region)]["output"]
    assert expr(outputs["vpc_id"]["value"]) == ref("aws_vpc", "vpc")
    assert {expr(v) for v in outputs["private_subnet_ids"]["value"]} == {
        ref("aws_subnet", n) for n in of_type(synth, network(region), "aws_subnet")
    }
    assert expr(outputs["lambda_security_group_id"]["value"]) == ref("aws_security_group", "lambda-sg")


class _Probe(TerraformStack):
    """A later layer in miniature: reads every contract attribute of a NetworkStack."""

    def __init__(self, app: App, net: NetworkStack) -> None:
        super().__init__(app, f"probe-{net.region}")
        self.add_dependency(net)
        TerraformOutput(self, "vpc_id", value=net.vpc_id)
        TerraformOutput(self, "lambda_security_group_id", value=net.lambda_security_group_id)
        for index, subnet_id in enumerate(net.private_subnet_ids):
            TerraformOutput(self, f"subnet_{index}", value=subnet_id)


def test_contract_attributes_cross_stacks_to_this_regions_resources(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    backend = BackendSettings.load()
    stacks = {r: NetworkStack(app, region=r, config=CONFIG, backend=backend) for r in REGIONS}
    for net in stacks.values():
        assert isinstance(net.private_subnet_ids, list)
        assert len(net.private_subnet_ids) >= 2
        _Probe(app, net)
    app.synth()
    probe = Synthesized(tmp_path)
    for region in REGIONS:
        outputs = probe.stacks[f"probe-{region}"]["output"]
        want = {"vpc_id": ref("aws_vpc", "vpc"), "lambda_security_group_id": ref("aws_security_group", "lambda-sg")}
        want |= {
            f"subnet_{i}": ref("aws_subnet", f"private-subnet-{i}")
            for i in range(len(stacks[region].private_subnet_ids))
        }
        assert set(outputs) == set(want)
        for output, expected in want.items():
            assert resolve(probe, f"probe-{region}", outputs[output]["value"]) == (network(region), expected), output
