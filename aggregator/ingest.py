"""Ingest: RegisterVerifyingKey and SubmitProof up to the durable ack.

Order of checks (cheap before expensive): shutting down, authentication and allowlist, rate limit
and queue quota (before verification: they must protect the expensive part), key resolution and
domain, native verification, signature and nonce. Verified proofs wait in a queue for the group-
commit writer: one transaction (one fsync) for many submissions, each acked only after its
group's COMMIT.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence

from aggregator import crashpoints
from aggregator.admission import Verifier, norm_addr, recover_submitter
from aggregator.changes import Changes
from aggregator.config import Config
from aggregator.metrics import Metrics
from aggregator.records import InsertResult, NewProof, Submission, SubmitAck, Verdict
from aggregator.store import StoreThread
from normalizers.api import ProofInput
from sheaf.errors import Exhausted, InvalidInput, NotFound, SheafError, Unauthenticated, Unavailable

log = logging.getLogger("sheaf.aggregator")


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> bool:
        now = time.monotonic()
        tokens, last = self.tokens.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.tokens[key] = (tokens, now)
            return False
        self.tokens[key] = (tokens - 1.0, now)
        return True


def network_of(source: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network a client address stands for: an IPv4 address (/32), an IPv6 /64 (what one
    subscriber usually gets); None if `source` is not an IP address."""
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 32 if ip.version == 4 else 64
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


class Ingest:
    """`route` picks a verified proof's aggregation kind (Proving.route)."""

    def __init__(
        self,
        cfg: Config,
        db: StoreThread,
        verifier: Verifier,
        route: Callable[[Verdict], str],
        changes: Changes,
        metrics: Metrics,
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.verifier = verifier
        self.route = route
        self.changes = changes
        self.metrics = metrics
        self.allow = {norm_addr(a) for a in cfg.allowlist}
        self.bucket = TokenBucket(cfg.rate_per_s, cfg.burst)
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in cfg.rate_exempt]
        self.accepting = True
        self._queue: asyncio.Queue[tuple[NewProof, asyncio.Future[InsertResult]]] = asyncio.Queue()
        m = metrics
        m.describe("sheaf_submissions_total", "Submissions by result (accepted, duplicate, rejected)")
        m.describe("sheaf_rejections_total", "Rejected submissions by error code")
        m.describe("sheaf_verify_seconds", "Proof verification latency")
        m.describe("sheaf_ack_seconds", "Submission latency until durable ack")
        m.describe("sheaf_routed_total", "Accepted proofs by aggregation path (recursive, attested)")

    async def drain(self) -> None:
        """Stop taking submissions and wait until the queued ones are handed to the writer."""
        self.accepting = False
        while not self._queue.empty():
            await asyncio.sleep(0.01)

    async def register_vk(self, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> bytes:
        self._check_size(len(vk) + len(settings or b""), "vk")
        h = await self.verifier.vk_hash(scheme, fmt, vk, settings)
        await self.db.run(self.db.store.put_vk, h, scheme, fmt, vk, settings)
        return h

    def _check_size(self, n: int, field: str) -> None:
        if n > self.cfg.max_message_bytes:
            raise Exhausted("TOO_LARGE", field, f"{field} is {n} bytes, limit {self.cfg.max_message_bytes}")

    async def submit(self, s: Submission) -> SubmitAck:
        t0 = time.perf_counter()
        try:
            return await self._submit(s, t0)
        except SheafError as e:
            self.metrics.inc("sheaf_submissions_total", result="rejected")
            self.metrics.inc("sheaf_rejections_total", code=str(e.code))
            raise

    async def _submit(self, s: Submission, t0: float) -> SubmitAck:
        new, _ = await self.admit(s)
        (res,) = await self.commit([new])
        self.metrics.observe("sheaf_ack_seconds", time.perf_counter() - t0, scheme=s.scheme)
        return SubmitAck(res.proof_id, new.statement_hash, res.duplicate, res.status)

    def quota_key(self, s: Submission, prover: str) -> str | None:
        """What the rate limit binds to (issue 13, item 7). A claimed address costs nothing to make
        (and is checked only after verification), so it is an identity only when the allowlist
        vouches for it: "prover:<address>". Otherwise the client's network ("net:<IPv4>" or
        "net:<IPv6 /64>"): rotating addresses does not give fresh quota. Clients in `rate_exempt`
        networks (loopback by default) and without a known address are limited by their claimed
        address if any ("prover:..."), else not at all."""
        if prover and self.allow:
            return "prover:" + prover
        net = network_of(s.source)
        if net is not None and not any(net.subnet_of(e) for e in self.exempt if e.version == net.version):  # type: ignore[arg-type]
            return f"net:{net}"
        return "prover:" + prover if prover else None

    async def admit(self, s: Submission) -> tuple[NewProof, Verdict]:
        """Every check up to the durable ack (auth, limits, key, domain, native verification,
        signature, routing): the proof ready for `commit`, and what verification said."""
        store = self.db.store
        if not self.accepting:
            raise Unavailable("SHUTTING_DOWN", "service", "the aggregator is shutting down")
        prover = norm_addr(s.prover) if s.prover else ""
        if self.cfg.require_auth and not (prover and s.signature):
            raise Unauthenticated("AUTH_REQUIRED", "auth", "prover authentication is required")
        if prover and self.allow and prover not in self.allow:
            raise Unauthenticated("PROVER_NOT_ALLOWED", "auth.prover", f"{s.prover} is not on the allowlist")
        # Before verification: rate limits must protect the expensive part.
        key = self.quota_key(s, prover)
        if key is not None and not self.bucket.take(key):
            field = "auth.prover" if key.startswith("prover:") else "source"
            raise Exhausted("RATE_LIMITED", field, f"rate limit for {key} exceeded")
        if prover:
            if await self.db.run(store.queued_count, prover) >= self.cfg.max_queued_per_prover:
                raise Exhausted("QUEUE_QUOTA", "auth.prover", f"queue quota for {s.prover} exceeded")
        if s.vk is None and s.vk_hash is None:
            raise InvalidInput("MISSING_VK", "vk", "either vk or vk_hash is required")
        vk, settings, fmt = s.vk, s.settings, s.format
        if vk is None:
            assert s.vk_hash is not None
            if len(s.vk_hash) != 32:
                raise InvalidInput(
                    "BAD_VK_HASH", "vk_hash", f"vk_hash must be 32 bytes, got {len(s.vk_hash)}"
                )
            row = await self.db.run(store.get_vk, s.vk_hash)
            if row is None:
                raise NotFound("UNKNOWN_VK", "vk_hash", f"no verifying key registered as 0x{s.vk_hash.hex()}")
            scheme_, fmt_, vk, settings_ = row
            if scheme_ != s.scheme:
                raise InvalidInput(
                    "VK_SCHEME_MISMATCH", "scheme", f"vk_hash names a {scheme_} key, not {s.scheme}"
                )
            fmt = fmt or fmt_
            settings = settings if settings else settings_
        domain = s.domain_id or self.cfg.default_domain
        if not 0 < domain < 1 << 63:  # ids are signed 64-bit INTEGERs in the store
            raise InvalidInput("MALFORMED", "domain_id", f"domain_id must be in 1..{(1 << 63) - 1}")
        if self.cfg.domains and domain not in self.cfg.domains:
            raise InvalidInput(
                "UNKNOWN_DOMAIN", "domain_id", f"domain {domain} is not served here ({self.cfg.domains})"
            )
        tv = time.perf_counter()
        v = await self.verifier.verify(ProofInput(s.scheme, fmt, s.proof, vk, s.public, settings))
        self.metrics.observe("sheaf_verify_seconds", time.perf_counter() - tv, scheme=s.scheme)
        if s.vk_hash is not None and v.vk_hash != s.vk_hash:
            raise InvalidInput("VK_HASH_MISMATCH", "vk_hash", "stored key hashes differently")
        if prover:
            await self._authenticate(s, prover, v.statement_hash, domain)
        kind = self.route(v)
        new = NewProof(
            domain,
            v.statement_hash,
            v.vk_hash,
            kind,
            s.scheme,
            fmt,
            s.proof,
            vk,
            s.public,
            settings,
            prover or None,
        )
        return new, v

    async def commit(self, items: Sequence[NewProof]) -> list[InsertResult]:
        """Hand admitted proofs to the group-commit writer; returns once all of them are durable."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[InsertResult]] = []
        for new in items:
            futs.append(loop.create_future())
            await self._queue.put((new, futs[-1]))
        results = list(await asyncio.gather(*futs))
        # counted here, not per API: an inference's slices are submissions too
        for new, res in zip(items, results, strict=True):
            self.metrics.inc("sheaf_submissions_total", result="duplicate" if res.duplicate else "accepted")
            if not res.duplicate:
                self.metrics.inc("sheaf_routed_total", kind=new.kind)
        return results

    async def _authenticate(self, s: Submission, prover: str, statement_hash: bytes, domain: int) -> None:
        """The signature is over the statement hash (known only after verification) and a nonce."""
        try:
            signer = norm_addr(recover_submitter(s.signature, statement_hash, s.nonce, domain))
        except Exception as e:
            raise Unauthenticated("BAD_SIGNATURE", "auth.signature", f"cannot recover signer: {e}") from e
        if signer != prover:
            raise Unauthenticated("BAD_SIGNATURE", "auth.signature", f"signed by {signer}, not {s.prover}")
        if not await self.db.run(self.db.store.check_and_bump_nonce, prover, s.nonce):
            raise Unauthenticated("STALE_NONCE", "auth.nonce", f"nonce {s.nonce} was already used")

    async def run_writer(self) -> None:
        """The group-commit writer: up to commit_group_max queued proofs per transaction."""
        while True:
            first = await self._queue.get()
            group = [first]
            while len(group) < self.cfg.commit_group_max and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                results = await self.db.run(self.db.store.insert_proofs, [p for p, _ in group])
            except Exception as e:
                log.exception(
                    "commit of %d submissions failed",
                    len(group),
                    extra={"proof_ids": [p.proof_id for p, _ in group]},
                )
                for _, f in group:
                    if not f.done():
                        f.set_exception(e)
                continue
            crashpoints.reached("ingest")
            for (_, f), r in zip(group, results, strict=True):
                if not f.done():
                    f.set_result(r)
            self.changes.notify()
