"""`aggregator run` configuration: TOML (tomllib) with local defaults; secrets only from env or keystore."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass
class RecursionConfig:
    """`[aggregator.recursion]`: the recursive prover (aggregator.recursion.RecursiveProver).

    `enabled` absent = auto: on iff the registry has an aggregation verifier configured at startup
    and the circuit shape is known (`batch`/`npub` here, or the deployment manifest's `recursive`
    section for this registry). true = on (startup fails without a shape); false = off (every batch
    is attested)."""

    enabled: bool | None = None
    batch: int = 0  # N leaves per outer proof; 0: from the deployment manifest
    npub: int = 0  # P public inputs per inner proof; 0: from the deployment manifest
    # K of the N slots verify gnark PLONK proofs (recursion transcript), the rest Groth16;
    # absent: from the deployment manifest (0 without one)
    plonk: int | None = None
    worker_bin: str = ""  # sheaf-gnark; empty: $SHEAF_GNARK_BIN, build/bin/sheaf-gnark, PATH
    cache_dir: str = ""  # key cache root; empty: $SHEAF_CACHE/recursion (shared with sheaf-deploy)
    circuit_hash: str = ""  # expected outer circuit; empty: from the manifest (if it names one)
    max_wait_ms: int = 10_000  # a partial recursive batch closes after this (a proof costs the same)
    max_attempts: int = 3  # worker crashes/timeouts/internal errors per batch before it is attested
    prove_timeout_s: float = 3600.0
    ready_timeout_s: float = 7200.0  # worker start: compile + key load, or a cold dev setup
    # Where outer proofs are computed: "local" (one `sheaf-gnark aggregate serve` process of this
    # aggregator, the embedded default) or "postgres" (`aggregator worker` processes on any machine
    # take the jobs from a PostgreSQL queue: aggregator/jobs_pg.py; docs/operations.md)
    queue: str = "local"
    queue_url: str = ""  # the queue's PostgreSQL; empty: db_url
    queue_schema: str = "sheaf_queue"  # procrastinate's tables and the job rows live in this schema
    # a job no worker has started after this long is given up (the batch is attested)
    queue_pickup_timeout_s: float = 600.0
    # a worker whose heartbeat is older than this lost its job: the job runs again elsewhere (the
    # workers' --heartbeat-s must be well below it)
    queue_stalled_after_s: float = 30.0
    # recursive batches in the queue at once (the workers prove them in parallel); local: always 1
    queue_max_inflight: int = 4

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecursionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown recursion config keys: {', '.join(unknown)}")
        return cls(**data)

    def validate(self) -> None:
        if self.batch < 0 or self.npub < 0:
            raise ValueError("recursion.batch and recursion.npub must be >= 1 (or 0: from the manifest)")
        if self.plonk is not None and (
            isinstance(self.plonk, bool) or self.plonk < 0 or (self.batch and self.plonk > self.batch)
        ):
            raise ValueError("recursion.plonk must be in [0, recursion.batch]")
        if self.max_attempts < 1:
            raise ValueError("recursion.max_attempts must be >= 1")
        if self.prove_timeout_s <= 0 or self.ready_timeout_s <= 0:
            raise ValueError("recursion timeouts must be > 0")
        if self.queue not in ("local", "postgres"):
            raise ValueError(f'recursion.queue must be "local" or "postgres", not {self.queue!r}')
        if self.queue_url and not self.queue_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("recursion.queue_url must be a postgresql:// URL")
        if not _SCHEMA.fullmatch(self.queue_schema):
            raise ValueError("recursion.queue_schema must be a lower-case SQL identifier (a-z, 0-9, _)")
        if self.queue_max_inflight < 1:
            raise ValueError("recursion.queue_max_inflight must be >= 1")
        if self.queue_pickup_timeout_s <= 0 or self.queue_stalled_after_s < 2:
            raise ValueError("recursion.queue_pickup_timeout_s must be > 0 and queue_stalled_after_s >= 2")


@dataclass
class Config:
    db_path: str = "sheaf-aggregator.db"
    # PostgreSQL instead of SQLite: "postgresql://user@host:port/db" (the password is better in
    # PGPASSWORD or ~/.pgpass than here). Several instances may share it; one leads (lease below).
    db_url: str = ""
    lease_ttl_s: float = 5.0  # a dead leader is replaced within ~1.2x this (aggregator.leader)
    instance_name: str = ""  # shown as the lease holder (with a random suffix); empty: host:pid
    grpc_listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    max_message_bytes: int = 4 * 1024 * 1024
    default_domain: int = 1
    # Domains this aggregator serves (each must exist in the registry); [] accepts any (benchmarks only).
    domains: list[int] = field(default_factory=lambda: [1])
    # Batching
    max_leaves: int = 64
    max_wait_ms: int = 2000
    # Chain spend bound: a partial batch (fewer than max_leaves) of a domain and kind closes at most
    # once per this many seconds; full batches are never held. 0: off (aggregator/batcher.py).
    min_post_interval_s: float = 0.0
    batch_tick_ms: int = 50
    # Attestation: the operator set (addresses) and the threshold k; operators talk to grpc_listen.
    operators: list[str] = field(default_factory=list)
    threshold: int = 1
    # Operators sign a deadline this far ahead; the registry refuses the attestation after it
    # (at most SheafRegistry.MAX_ATTESTATION_TTL, 1 day). A batch is collected again, never posted
    # stale, when a quarter of this is left (docs/contracts.md, "Expiry").
    attest_ttl_s: int = 600
    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    registry: str = ""  # registry address; empty: read deployments/<chainId>.json
    deployments_dir: str = "deployments"
    confirmations: int = 2
    gas_margin_pct: int = 30
    # A posting transaction still pending this long is replaced (same nonce, both fees +12.5%);
    # 0 never replaces. The cap (gwei, 0: none) bounds every fee offered, replacements included.
    bump_after_s: float = 30.0
    max_fee_per_gas_gwei: float = 0.0
    rpc_retries: int = 6
    submitter_key_env: str = "SHEAF_SUBMITTER_KEY"
    submitter_keystore: str = ""  # path to a JSON keystore; password from SHEAF_SUBMITTER_PASSWORD
    poll_ms: int = 250
    # Prover authentication and quotas (off by default for local use)
    require_auth: bool = False
    allowlist: list[str] = field(default_factory=list)
    rate_per_s: float = 50.0
    burst: int = 100
    max_queued_per_prover: int = 10_000
    # Quotas (rate_per_s, burst) bind to an allowlisted prover's address, else to the client's network
    # (its IPv4 address, or IPv6 /64): a fresh address is free to make, a network is not. Clients in
    # these networks are trusted (local tools, tests): they are limited by their claimed address only.
    rate_exempt: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    # Ingest and verification (normalizers.Normalizer)
    commit_group_max: int = 256
    srs_path: str = ""  # ezkl KZG SRS (a k=1 verifier cut suffices); empty: normalizers' default
    groth16_backend: str = "sidecar"  # or "groth16py" (in-process)
    sidecar_bin: str = ""  # sheaf-gnark; empty: SHEAF_GNARK_BIN, build/bin, PATH
    log_level: str = "INFO"
    # /readyz turns 503 when a domain's oldest unposted batch, or the oldest queued proof, is older
    # than this (a stalled domain); 0 turns the two checks off
    stall_after_s: float = 600.0
    recursion: RecursionConfig = field(default_factory=RecursionConfig)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> Config:
        data: dict[str, Any] = {}
        if path is not None:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
            data = dict(raw.get("aggregator", raw))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        rec = data.get("recursion")
        if isinstance(rec, dict):
            data["recursion"] = RecursionConfig.from_dict(rec)
        elif rec is not None and not isinstance(rec, RecursionConfig):
            raise ValueError("recursion must be a table ([aggregator.recursion])")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be >= 1")
        if self.operators and self.threshold > len(self.operators):
            raise ValueError(f"threshold {self.threshold} exceeds the {len(self.operators)} operators")
        if self.domains and self.default_domain not in self.domains:
            raise ValueError(f"default_domain {self.default_domain} is not in domains {self.domains}")
        if self.max_leaves < 1:
            raise ValueError("max_leaves must be >= 1")
        if self.confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        if self.db_url and not self.db_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("db_url must be a postgresql:// URL (SQLite is db_path)")
        if self.lease_ttl_s < 1.0:
            raise ValueError("lease_ttl_s must be >= 1")
        if not 20 <= self.attest_ttl_s <= 86_400:
            raise ValueError("attest_ttl_s must be within 20..86400 (the registry's MAX_ATTESTATION_TTL)")
        self.recursion.validate()
        if self.recursion.queue == "postgres":
            if not (self.recursion.queue_url or self.db_url):
                raise ValueError('recursion.queue = "postgres" needs db_url (or recursion.queue_url)')
            self.recursion.queue_url = self.recursion.queue_url or self.db_url


def load_key(env_name: str, keystore: str = "", password_env: str = "") -> str:
    """A private key from a keystore file (password from env) or from env; never a built-in default."""
    if keystore:
        from eth_account import Account

        pw = os.environ.get(password_env, "")
        with open(keystore) as f:
            return "0x" + bytes(Account.decrypt(json.load(f), pw)).hex()
    key = os.environ.get(env_name, "")
    if not key:
        raise ValueError(f"no key: set {env_name} or give a keystore")
    return key
