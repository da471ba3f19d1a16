"""Every stack: names, provider default tags, S3 backend, layer order in the manifest."""

from __future__ import annotations

import itertools

from layers.base import BackendSettings, resource_name, stack_name
from layers.config import BOOTSTRAP, LAYER_ORDER, REGION_CODES, load_config
from tests.synthesized import Synthesized

CONFIG = load_config(environ={})
#: Every layer the default config deploys per region (``account`` is opt-in: tests/layers/test_account.py;
#: ``witness`` is one stack, in the witness region).
REGIONAL_LAYERS = tuple(layer for layer in LAYER_ORDER if layer not in ("account", "witness"))
WITNESS_STACK = stack_name("witness", CONFIG.witness_region)


def test_one_stack_per_layer_and_region_plus_global_witness_and_bootstrap(synth: Synthesized) -> None:
    expected = {stack_name(layer, region) for layer in REGIONAL_LAYERS for region in CONFIG.regions}
    expected |= {"edge-global", WITNESS_STACK, BOOTSTRAP}
    assert set(synth.stacks) == expected


def test_the_witness_stack_uses_the_witness_region_and_both_compute_stacks_depend_on_it(synth: Synthesized) -> None:
    assert [p["region"] for p in synth.providers(WITNESS_STACK)] == [CONFIG.witness_region]
    assert WITNESS_STACK == "witness-us-west-2"
    deps = {name: set(stack["dependencies"]) for name, stack in synth.manifest["stacks"].items()}
    assert deps[WITNESS_STACK] == set(), "the witness depends on nothing"
    for region in CONFIG.regions:
        assert WITNESS_STACK in deps[stack_name("compute", region)]


def test_every_provider_sets_default_tags_with_its_own_region(synth: Synthesized) -> None:
    for name in synth.stacks:
        providers = synth.providers(name)
        assert providers, f"{name} has no aws provider"
        for provider in providers:
            tags = provider["default_tags"][0]["tags"]
            assert tags["Environment"] == CONFIG.environment_suffix, name
            assert tags["Region"] == provider["region"], name
            assert tags["Project"] == "payments-dr"
            assert tags["Layer"] == name.split("-")[0]


def test_regional_stacks_use_their_region(synth: Synthesized) -> None:
    for layer in REGIONAL_LAYERS:
        for region in CONFIG.regions:
            default = [p for p in synth.providers(stack_name(layer, region)) if "alias" not in p]
            assert [p["region"] for p in default] == [region]


def test_every_stack_but_bootstrap_has_s3_backend_with_unique_key(synth: Synthesized, synth_longest) -> None:
    backend = BackendSettings.load()
    keys = []
    for app in (synth, synth_longest):
        suffix = app.stacks["network-us-east-1"]["provider"]["aws"][0]["default_tags"][0]["tags"]["Environment"]
        for name, stack in app.stacks.items():
            if name == BOOTSTRAP:
                assert "local" in stack["terraform"]["backend"]
                continue
            s3 = stack["terraform"]["backend"]["s3"]
            assert s3["key"] == f"{backend.key_prefix}/{suffix}/{name}.tfstate"
            assert s3["bucket"] == backend.bucket_name(suffix)
            assert s3["dynamodb_table"] == backend.table_name(suffix)
            assert s3["encrypt"] is True
            keys.append((s3["bucket"], s3["key"]))
    assert len(keys) == len(set(keys)), "two stacks or two suffixes share a state key"


def test_bootstrap_creates_the_bucket_and_table_the_backends_use(synth: Synthesized) -> None:
    backend = BackendSettings.load()
    buckets = [r.body["bucket"] for r in synth.resources("aws_s3_bucket", stack=BOOTSTRAP)]
    tables = [r.body["name"] for r in synth.resources("aws_dynamodb_table", stack=BOOTSTRAP)]
    # The state bucket and lock table, and their break-glass copies in the secondary region.
    assert sorted(buckets) == sorted([backend.bucket_name("dev"), backend.replica_bucket_name("dev")])
    assert sorted(tables) == sorted([backend.table_name("dev"), backend.replica_table_name("dev")])
    assert all(bucket.body["force_destroy"] is True for bucket in synth.resources("aws_s3_bucket", stack=BOOTSTRAP))
    kinds = {r.type for r in synth.resources(stack=BOOTSTRAP)}
    assert {
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_policy",
    } <= kinds
    policy = next(synth.resources("aws_s3_bucket_policy", stack=BOOTSTRAP)).body["policy"]
    assert "aws:SecureTransport" in policy


def test_manifest_dependencies_respect_layer_order(synth: Synthesized) -> None:
    def rank(name: str) -> int:
        return -1 if name == BOOTSTRAP else LAYER_ORDER.index(name.split("-")[0])

    seen_dependency = False
    for name, stack in synth.manifest["stacks"].items():
        for dependency in stack["dependencies"]:
            seen_dependency = True
            assert rank(dependency) <= rank(name), f"{name} depends on later layer {dependency}"
            assert dependency != BOOTSTRAP, "stacks read the state bootstrap creates, never its outputs"
    assert seen_dependency


def test_every_later_layer_depends_on_the_layer_before_in_its_region(synth: Synthesized) -> None:
    deps = {name: set(stack["dependencies"]) for name, stack in synth.manifest["stacks"].items()}
    for region in CONFIG.regions:
        for earlier, later in itertools.pairwise(REGIONAL_LAYERS):
            assert stack_name(earlier, region) in deps[stack_name(later, region)]


def test_resource_name_appends_suffix() -> None:
    assert resource_name("payments", "pr-7") == "payments-pr-7"


def test_every_known_region_has_a_short_code() -> None:
    from layers.config import KNOWN_REGIONS

    assert set(REGION_CODES) == KNOWN_REGIONS
    assert len(set(REGION_CODES.values())) == len(REGION_CODES)
