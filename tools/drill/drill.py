"""One drill run: both regions wired together, a scenario played second by second, figures measured.

Each simulated second, in order: the scenario's events that are due, replication, the
EventBridge schedules, Route 53's checks, new payments and client retries, the SQS mappings,
a timeline sample. After the scenario's duration every region is brought back and the drill
keeps running (no new payments) until clients, replication and queues are done, so ``lost``
is measured once both regions are back.
"""

from __future__ import annotations

import math
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from moto import mock_aws

from lambdas.payments_common import credentials
from tools.drill.apigw import ApiGateway, Unreachable
from tools.drill.clients import GAVE_UP, Client, Payment, PaymentProvider
from tools.drill.clock import SimClock
from tools.drill.cloudwatch import CloudWatch
from tools.drill.esm import EventSourceMapping
from tools.drill.route53 import Resolver, Route53
from tools.drill.runtime import Environ, Runtime
from tools.drill.synth import Topology
from tools.drill.world import FunctionCrashed, World

FINAL_STATUSES = frozenset({"PROCESSED", "DECLINED"})
#: How long the drill waits, after the scenario, for everything to settle (simulated seconds).
SETTLE_LIMIT_S = 1200
SETTLE_CHECK_EVERY_S = 10
#: Simulated seconds a status read waits at most for the stage's rate limit before it counts as not final.
STATUS_READ_WAITS = 60
MERCHANT = "merchant-drill"
_KEYS = uuid.UUID("6f1c1f7e-0b1d-4c55-9d51-6d1f0c0ad711")
#: A Luhn-valid test card number (Visa's documented test number).
_PAN = "4111111111111111"
#: Bad requests a client might send (name -> body fields or raw text): each must get a final 4xx.
BAD_INPUTS: tuple[tuple[str, dict[str, Any] | str], ...] = (
    ("pan_as_token", {"amount": "10.00", "currency": "USD", "merchant_id": MERCHANT, "card_token": _PAN}),
    (
        "pan_in_extra_key",
        {
            "amount": "10.00",
            "currency": "USD",
            "merchant_id": MERCHANT,
            "card_token": "tok_x1234",
            "note": f"card {_PAN[:4]} {_PAN[4:8]} {_PAN[8:12]} {_PAN[12:]}",
        },
    ),
    ("pan_as_merchant", {"amount": "10.00", "currency": "USD", "merchant_id": _PAN, "card_token": "tok_x1234"}),
    (
        "other_merchant",
        {"amount": "10.00", "currency": "USD", "merchant_id": "merchant-other", "card_token": "tok_x1234"},
    ),
    (
        "huge_exponent",
        '{"amount": 1e999999, "currency": "USD", "merchant_id": "' + MERCHANT + '", "card_token": "tok_x1234"}',
    ),
    ("not_json", '{"amount": "10.00", "currency": '),
    ("negative_amount", {"amount": "-5", "currency": "USD", "merchant_id": MERCHANT, "card_token": "tok_x1234"}),
    ("unknown_currency", {"amount": "10.00", "currency": "XXX", "merchant_id": MERCHANT, "card_token": "tok_x1234"}),
)


class Target(Protocol):
    """Where a drill's AWS is, when it is not moto in this process (:mod:`tools.drill.deployed`)."""

    def world(self, topology: Topology, clock: SimClock) -> World:
        """The world over this AWS."""

    def aws(self) -> AbstractContextManager[Any]:
        """For the length of a run: each function's credentials, IAM enforcement."""

    environ: Environ


@dataclass(frozen=True)
class Event:
    """Something the scenario does at ``at`` seconds."""

    at: float
    label: str
    action: Callable[[Drill], None]


@dataclass(frozen=True)
class Scenario:
    """A drill scenario."""

    name: str
    title: str
    duration_s: int
    events: tuple[Event, ...] = ()
    rate_per_s: float = 2.0
    clients: int = 6
    #: Region the fault hits (``"primary"``/``"secondary"``) and when, for RTO and RPO.
    fault_region: str | None = None
    fault_at: float | None = None
    #: Whether the README's worst-case RTO covers this scenario.
    rto_covered: bool = False
    skews: dict[str, float] = field(default_factory=dict)
    #: Every n-th new payment is bad input (:data:`BAD_INPUTS`, in turn); 0: none.
    bad_input_every: int = 0
    #: (from, until, rate): payments per second in that window instead of ``rate_per_s``.
    bursts: tuple[tuple[float, float, float], ...] = ()


@dataclass
class Sample:
    """The timeline, one sample per simulated second."""

    t: float
    dns: str
    active: tuple[str, ...]
    attempts: int
    successes: int
    lag_s: dict[str, float]


class Drill:
    """Runs one scenario against the topology."""

    def __init__(self, topology: Topology, scenario: Scenario, target: Target | None = None) -> None:
        """``target``: the AWS to drill (default: moto in this process, made from ``topology``)."""
        self.topology, self.scenario, self.target = topology, scenario, target
        self.clock = SimClock()
        self.world = target.world(topology, self.clock) if target else World(topology, self.clock)
        skews = {self.region(name): value for name, value in scenario.skews.items()}
        self.runtime = Runtime(topology, self.world, self.clock, skews, target.environ if target else None)
        self.provider = PaymentProvider()
        self.transactions = next(
            spec.environment["TRANSACTIONS_TABLE"]
            for spec in topology.functions.values()
            if "TRANSACTIONS_TABLE" in spec.environment
        )
        self.created: dict[int, set[str]] = defaultdict(set)
        #: payment id -> (region, seconds, status): where and when it became final.
        self.finished_in: dict[str, tuple[str, float, str]] = {}
        self.reverted: set[str] = set()
        self.events: list[tuple[float, str]] = []
        self.samples: list[Sample] = []
        self.orchestrator_results: list[tuple[float, str, str]] = []
        #: Payments each region's orchestrator re-enqueued (its sweeper: stale or orphaned PENDING payments).
        self.swept: Counter[str] = Counter()
        self.first_success_elsewhere: float | None = None
        self.rpo_count: int | None = None
        self._payments = 0
        self._arrivals = 0.0

    def region(self, name: str) -> str:
        """``primary`` / ``secondary`` / a region name -> the region name."""
        return {"primary": self.topology.primary, "secondary": self.topology.secondary}.get(name, name)

    @property
    def now(self) -> float:
        """Seconds since the drill started."""
        return self.clock.elapsed

    # ---------------------------------------------------------------- wiring

    def _wire(self) -> None:
        self.world.create()
        self.runtime.load()
        self.world.observers.append(self._observe)
        self.api_key = self._provision_key()
        self.apis = {
            region: ApiGateway(spec, self.runtime, self.clock, lambda r: r in self.world.down, self._metric)
            for region, spec in self.topology.apis.items()
        }
        self._hosts = {spec.regional_host: region for region, spec in self.topology.apis.items()}
        self.world.http = self._http
        self.cloudwatch = CloudWatch(self.topology, self.clock, self._notify, lambda r: r in self.world.down)
        self.runtime.metric = self.world.metric = self._metric
        self.route53 = Route53(self.topology, self.apis, self.clock, self.cloudwatch.state, self._metric)
        spread = self.route53.ttl_s / self.scenario.clients  # the clients' DNS caches expire at different times
        self.clients = [
            Client(f"client-{i}", self.apis, Resolver(self.route53, self.clock, expires_in_s=i * spread), self.clock)
            for i in range(self.scenario.clients)
        ]
        self.mappings = [
            EventSourceMapping(m, self.topology.queues[(m.spec.region, m.spec.queue)], self.world, self.runtime)
            for m in self.world.lambda_control.mappings
        ]

    def _provision_key(self) -> str:
        """The drill merchant's API key, written like ``tools/merchants.py`` does; the token clients send.

        In the primary's merchants table, captured, so replication carries it to the secondary.
        """
        primary = self.topology.primary
        env = next(
            spec.environment
            for spec in self.topology.functions.values()
            if spec.region == primary and "MERCHANTS_TABLE" in spec.environment
        )
        key = credentials.new_key(env["ENVIRONMENT_SUFFIX"])
        self.world.client("dynamodb", primary).put_item(
            TableName=env["MERCHANTS_TABLE"],
            Item=credentials.key_item(MERCHANT, key, self.clock.iso()[:19] + "Z"),
            ConditionExpression="attribute_not_exists(key_id)",
        )
        self.world.replicator.deliver(float("inf"), set())  # the key is in both regions before traffic
        return key.token

    def _http(self, caller: str | None, method: str, url: str) -> int | None:
        """A function's HTTPS request to a regional API name (``/health``): its status, or None."""
        parts = urllib.parse.urlsplit(url)
        region = self._hosts.get(parts.hostname or "")
        if region is None or self.world.cut(caller, region):
            return None
        try:
            return self.apis[region].request(method, parts.path).status
        except Unreachable:
            return None

    def auth_headers(self) -> dict[str, str]:
        """What a client of the drill merchant sends with every request."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def _metric(self, region: str, namespace: str, name: str, dims: dict[str, str], value: float) -> None:
        self.cloudwatch.put(region, namespace, name, dims, value)

    def _notify(self, region: str, function: str, event: dict[str, Any]) -> None:
        """SNS -> Lambda (asynchronous); nothing runs in a region that is down."""
        if region not in self.world.down:
            self.invoke_async(region, function, event)

    def _observe(self, table: str, region: str, key: dict[str, Any], before: Any, after: Any, replicated: bool) -> None:
        """The transactions write stream: new payments, reverted statuses, charges."""
        if table != self.transactions:
            return
        payment_id = key["payment_id"]["S"]
        old = (before or {}).get("status", {}).get("S")
        new = (after or {}).get("status", {}).get("S")
        if not replicated and old is None and new == "PENDING":
            self.created[math.floor(self.now)].add(region)
        if not replicated and old not in FINAL_STATUSES and new in FINAL_STATUSES:
            self.finished_in.setdefault(payment_id, (region, self.now, str(new)))
        if old in FINAL_STATUSES and new != old:
            self.reverted.add(payment_id)
        if not replicated and old == "PENDING" and new == "PROCESSED":
            # Where processing would call the provider, with payment_id as the provider's idempotency key.
            self.provider.charge(self.now, payment_id, after["card_token"]["S"], after["amount"]["S"], region)

    # ---------------------------------------------------------------- the loop

    @contextmanager
    def session(self) -> Iterator[Drill]:
        """moto, the simulated clock and the request hook in place, everything wired."""
        with self.target.aws() if self.target else mock_aws(), self.clock.installed(), self.world.hooked():
            self._wire()
            yield self

    def run(self) -> dict[str, Any]:
        """Play the scenario, then let every region recover and settle; returns figures and timeline."""
        with self.session():
            pending = sorted(self.scenario.events, key=lambda e: e.at)
            while self.now < self.scenario.duration_s:
                while pending and pending[0].at <= self.now:
                    event = pending.pop(0)
                    self.events.append((self.now, event.label))
                    event.action(self)
                self.step(new_payments=True)
            self._end_faults()
            settle_until = self.now + SETTLE_LIMIT_S
            while self.now < settle_until and not (self.now % SETTLE_CHECK_EVERY_S == 0 and self._settled()):
                self.step(new_payments=False)
            return self.figures()

    def _end_faults(self) -> None:
        for region in sorted(self.world.down):
            self.world.recover(region)
            self.events.append((self.now, f"{region} back (end of scenario)"))
        self.world.partitioned = False
        self.world.faults.clear()
        for api in self.apis.values():
            api.forced_status = None

    def step(self, new_payments: bool = False) -> None:
        """One simulated second."""
        self.world.replicate()
        self._schedules()
        self.route53.tick()
        self._alarms()
        if new_payments:
            self._arrive()
        before = sum(len(c.attempts) for c in self.clients)
        for client in self.clients:
            client.tick()
        self._watch_failover()
        for mapping in self.mappings:
            mapping.poll()
        self._sample(before)
        self.clock.advance(1.0)

    def _schedules(self) -> None:
        for schedule in self.topology.schedules:
            if schedule.region in self.world.down or int(self.now) % schedule.every_s:
                continue
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": self.clock.iso()[:19] + "Z",
                "region": schedule.region,
                "resources": [f"arn:aws:events:{schedule.region}:123456789012:rule/{schedule.name}"],
                "detail": {},
            }
            self.invoke_async(schedule.region, schedule.function, event)

    def _alarms(self) -> None:
        seen = len(self.cloudwatch.changes)
        self.cloudwatch.tick(self.world.down)
        for _t, region, name, state in self.cloudwatch.changes[seen:]:
            if any(spec.rule for (r, n), spec in self.topology.alarms.items() if (r, n) == (region, name)):
                self.events.append((self.now, f"{name}: {state}"))

    def invoke_async(self, region: str, function: str, event: dict[str, Any]) -> None:
        """An asynchronous invocation (schedule, SNS, an operator's manual action); errors are recorded."""
        try:
            result = self.runtime.invoke(region, function, event)
        except FunctionCrashed as exc:  # killed mid-run: Lambda's async retries and the next schedule follow
            self.orchestrator_results.append((self.now, region, "crashed"))
            self.events.append((self.now, f"{function} in {region} crashed ({exc})"))
            return
        except Exception as exc:  # an async invocation's error is retried by Lambda; the figures count it
            self.orchestrator_results.append((self.now, region, f"error: {type(exc).__name__}"))
            self.events.append((self.now, f"{function} in {region} raised {type(exc).__name__}"))
            return
        status = result.get("status") if isinstance(result, dict) else None
        nested = (result.get("failover") or {}).get("status") if isinstance(result, dict) else None
        if isinstance(result, dict) and isinstance(result.get("swept"), int):
            self.swept[region] += result["swept"]
        for value in (status, nested):
            if value and value not in ("heartbeat", "ignored"):
                self.orchestrator_results.append((self.now, region, value))
                reason = result.get("reason") if value in ("refused", "rejected", "demoted", "noop") else None
                self.events.append((self.now, f"{function} in {region}: {value}" + (f" ({reason})" if reason else "")))

    def _rate(self) -> float:
        for start, end, rate in self.scenario.bursts:
            if start <= self.now < end:
                return rate
        return self.scenario.rate_per_s

    def _arrive(self) -> None:
        self._arrivals += self._rate()
        while self._arrivals >= 1.0:
            self._arrivals -= 1.0
            number = self._payments
            self._payments += 1
            payment = Payment(
                number=number,
                key=str(uuid.uuid5(_KEYS, f"payment-{number}")),
                body={
                    "amount": f"{10 + number % 90}.{number % 100:02d}",
                    "currency": "USD",
                    "merchant_id": MERCHANT,
                    "card_token": f"tok_drill_{number:06d}",
                },
                created_at=self.now,
                next_try=self.now,
                headers=self.auth_headers(),
            )
            every = self.scenario.bad_input_every
            if every and number % every == every - 1:
                _name, bad = BAD_INPUTS[(number // every) % len(BAD_INPUTS)]
                payment.bad = True
                if isinstance(bad, str):
                    payment.raw_body = bad
                else:
                    payment.body = bad
            self.clients[number % len(self.clients)].submit(payment)

    def _watch_failover(self) -> None:
        """RTO and RPO: the first success in the other region after the fault."""
        if self.scenario.fault_at is None or self.first_success_elsewhere is not None:
            return
        faulty = self.region(self.scenario.fault_region or "primary")
        for client in self.clients:
            for attempt in reversed(client.attempts):
                if attempt.at < self.now:
                    break
                if attempt.status.startswith("2") and attempt.region != faulty:
                    self.first_success_elsewhere = self.now
                    self.rpo_count = self._not_visible(attempt.region, faulty)
                    self.events.append((self.now, f"first success in {attempt.region}"))
                    return

    def _not_visible(self, region: str, faulty: str) -> int:
        """Payments acknowledged by ``faulty`` that ``region``'s replica does not have yet."""
        missing = 0
        with self.world.internal():
            client = self.world.client("dynamodb", region)
            for payment in self.payments():
                if payment.acknowledged_by == faulty and payment.payment_id:
                    key = {"payment_id": {"S": payment.payment_id}}
                    if "Item" not in client.get_item(TableName=self.transactions, Key=key, ConsistentRead=True):
                        missing += 1
        return missing

    def _sample(self, attempts_before: int) -> None:
        attempts = [a for c in self.clients for a in c.attempts if a.at == self.now]
        self.samples.append(
            Sample(
                t=self.now,
                dns=self.route53.resolve_now(),
                active=tuple(sorted(self.created.get(math.floor(self.now), ()))),
                attempts=len(attempts),
                successes=sum(1 for a in attempts if a.status.startswith("2")),
                lag_s={
                    region: round(self.world.replicator.lag_seconds(region, self.clock.now), 1)
                    for region in self.topology.regions
                },
            )
        )

    def _settled(self) -> bool:
        if any(p.open for p in self.payments()) or self.world.replicator.pending:
            return False
        return all(mapping.depth() == 0 for mapping in self.mappings if mapping.mapping.enabled)

    # ---------------------------------------------------------------- figures

    def payments(self) -> list[Payment]:
        """Every payment of every client."""
        return [p for c in self.clients for p in c.payments]

    def _final_everywhere(self, payment_id: str) -> bool:
        """Final in every region as the merchant sees it: ``GET /payments/{id}`` on each region's API."""
        for region in self.topology.tables[self.transactions].regions:
            answer = self.apis[region].request("GET", f"/payments/{payment_id}", headers=self.auth_headers())
            for _ in range(STATUS_READ_WAITS):  # the stage's rate limit: wait for its bucket to refill
                if answer.status != 429:
                    break
                self.clock.advance(1.0)
                answer = self.apis[region].request("GET", f"/payments/{payment_id}", headers=self.auth_headers())
            if answer.status != 200 or (answer.body or {}).get("status") not in FINAL_STATUSES:
                return False
        return True

    def _across_regions(self) -> list[dict[str, Any]]:
        """Payments a client first sent to one region and the other accepted (same key, same body), in order.

        With where and when each became final: what a failover looks like from a client's side.
        """
        found = []
        for client in self.clients:
            first: dict[int, Any] = {}
            for attempt in client.attempts:
                first.setdefault(attempt.payment, attempt)
            for payment in client.payments:
                tried = first.get(payment.number)
                if payment.bad or tried is None or not payment.payment_id:
                    continue
                if payment.acknowledged_by in (None, tried.region):
                    continue
                region, at, status = self.finished_in.get(payment.payment_id, (None, None, None))
                found.append(
                    {
                        "payment_id": payment.payment_id,
                        "idempotency_key": payment.key,
                        "first_sent_to": tried.region,
                        "first_sent_s": tried.at,
                        "first_answer": tried.status,
                        "accepted_by": payment.acknowledged_by,
                        "accepted_s": payment.acknowledged_at,
                        "attempts": payment.attempts,
                        "finished_in": region,
                        "finished_s": at,
                        "status": status,
                    }
                )
        return sorted(found, key=lambda entry: entry["first_sent_s"])

    def figures(self) -> dict[str, Any]:
        """The scenario's figures (plain names) and its timeline."""
        simulated_s = round(self.now, 1)  # before the status reads below (they wait out the rate limit)
        everything = self.payments()
        bad = [p for p in everything if p.bad]
        payments = [p for p in everything if not p.bad]
        acknowledged = [p for p in payments if p.acknowledged_at is not None]
        final = [p for p in acknowledged if p.payment_id and self._final_everywhere(p.payment_id)]
        attempts = [a for c in self.clients for a in c.attempts]
        errors = Counter(a.status for a in attempts if not a.status.startswith("2"))
        seconds = Counter(math.floor(a.at) for a in attempts)
        ok_seconds = {math.floor(a.at) for a in attempts if a.status.startswith("2")}
        fault_at = self.scenario.fault_at
        dlq = 0
        with self.world.internal():
            for queue in self.topology.queues.values():
                if queue.name.endswith(tuple(q.dlq_name or "\0" for q in self.topology.queues.values())):
                    attributes = self.world.client("sqs", queue.region).get_queue_attributes(
                        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]
                    dlq += int(attributes["ApproximateNumberOfMessages"])
        return {
            "scenario": self.scenario.name,
            "title": self.scenario.title,
            "attempted": len(payments),
            "acknowledged": len(acknowledged),
            "final": len(final),
            "lost": len(acknowledged) - len(final),
            "charged_twice": self.provider.charged_twice(),
            "provider_deduplicated": self.provider.deduplicated(),
            "reverted": len(self.reverted),
            "client_errors": dict(sorted(errors.items())),
            "refused": sum(1 for p in payments if p.final_error not in (None, GAVE_UP)),
            "gave_up": sum(1 for p in payments if p.final_error == GAVE_UP),
            "attempts": len(attempts),
            "bad_input": len(bad),
            "bad_input_answers": dict(sorted(Counter(p.final_error or "202" for p in bad).items())),
            "rto_s": None
            if fault_at is None or self.first_success_elsewhere is None
            else round(self.first_success_elsewhere - fault_at, 1),
            "rpo_count": self.rpo_count,
            "two_active_s": sum(1 for regions in self.created.values() if len(regions) > 1),
            "none_active_s": sum(1 for second in seconds if second not in ok_seconds),
            "dlq_messages": dlq,
            "swept": dict(sorted(self.swept.items())),
            "across_regions": self._across_regions(),
            "simulated_s": simulated_s,
            "events": [{"t": t, "what": what} for t, what in self.events],
            "dns_answers": [{"t": t, "region": r} for t, r in self.route53.answers],
            "timeline": [
                {
                    "t": s.t,
                    "dns": s.dns,
                    "active": list(s.active),
                    "attempts": s.attempts,
                    "successes": s.successes,
                    "lag_s": s.lag_s,
                }
                for s in self.samples
            ],
        }
