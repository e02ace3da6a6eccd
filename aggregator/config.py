"""`aggregator run` configuration: TOML (tomllib) with local defaults; secrets only from env or keystore.

The two tables are pydantic models (strict types, unknown keys refused, ranges as `Field` bounds);
a bad file raises `ConfigInvalid` (code CONFIG) naming the full dotted key and what it expects, e.g.
`aggregator.recursion.batchsize: unknown key; did you mean batch?`. Checks that span several keys
(threshold vs operators, ...) are `Config.check()`, run by `Config.load` only: code that builds a
Config itself (tests, benches) gets type and range checks but may leave those combinations open."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.validation import first_error
from sheaf.errors import InvalidInput

_SCHEMA = r"^[a-z_][a-z0-9_]{0,62}$"
_PG_URL_OR_EMPTY = r"^(?:(?:postgresql|postgres)://.*)?$"
# strict: TOML has real types, so "2" for an integer or true for 1 is a mistake worth naming (an
# integer is still accepted where a number is expected); frozen: a loaded config is a value
_MODEL = ConfigDict(extra="forbid", frozen=True, strict=True)


class ConfigInvalid(InvalidInput, ValueError):
    """An invalid configuration: code CONFIG, `field` the full dotted key as written in the file
    (`aggregator.recursion.batch`), `file` the TOML file ("" for values given in code). A ValueError
    so that `aggregator run`/`worker` report it as CONFIG with exit status 8 (aggregator/cli.py,
    which prefixes the file: str() is "<key>: <message>" without the code)."""

    def __init__(self, field: str, message: str, file: str = "") -> None:
        super().__init__("CONFIG", field, message)
        self.file = file

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def __reduce__(self) -> tuple[type[ConfigInvalid], tuple[str, str, str]]:
        return (type(self), (self.field, self.message, self.file))


class RecursionConfig(BaseModel):
    """`[aggregator.recursion]`: the recursive prover (aggregator.recursion.RecursiveProver).

    `enabled` absent = auto: on iff the registry has an aggregation verifier configured at startup
    and the circuit shape is known (`batch`/`npub` here, or the deployment manifest's `recursive`
    section for this registry). true = on (startup fails without a shape); false = off (every batch
    is attested)."""

    model_config = _MODEL

    enabled: bool | None = None
    batch: int = Field(default=0, ge=0)  # N leaves per outer proof; 0: from the deployment manifest
    npub: int = Field(default=0, ge=0)  # P public inputs per inner proof; 0: from the deployment manifest
    # K of the N slots verify gnark PLONK proofs (recursion transcript), the rest Groth16;
    # absent: from the deployment manifest (0 without one); at most `batch` (Config.check)
    plonk: int | None = Field(default=None, ge=0)
    worker_bin: str = ""  # sheaf-gnark; empty: $SHEAF_GNARK_BIN, build/bin/sheaf-gnark, PATH
    cache_dir: str = ""  # key cache root; empty: $SHEAF_CACHE/recursion (shared with sheaf-deploy)
    circuit_hash: str = ""  # expected outer circuit; empty: from the manifest (if it names one)
    max_wait_ms: int = 10_000  # a partial recursive batch closes after this (a proof costs the same)
    # How a proven batch is posted. false (default): submitRecursiveAggregationRoot(root, count, proof):
    # the proof binds root and count, the leaves are served by this aggregator (inclusion proofs, the
    # explorer), as for attested batches. true: submitRecursiveAggregation(leaves, proof): every leaf
    # also goes in calldata and the registry recomputes the root (leaves recoverable from the chain
    # alone; ~0.8k gas more per leaf: +55k at 64 leaves, +100k at 128, bench/results/gas.json).
    publish_leaves: bool = False
    # worker crashes/timeouts/internal errors per batch before it is attested
    max_attempts: int = Field(default=3, ge=1)
    prove_timeout_s: float = Field(default=3600.0, gt=0)
    # worker start: compile + key load, or a cold dev setup
    ready_timeout_s: float = Field(default=7200.0, gt=0)
    # Where outer proofs are computed: "local" (one `sheaf-gnark aggregate serve` process of this
    # aggregator, the embedded default) or "postgres" (`aggregator worker` processes on any machine
    # take the jobs from a PostgreSQL queue: aggregator/jobs_pg.py; docs/operations.md)
    queue: Literal["local", "postgres"] = "local"
    # the queue's PostgreSQL; empty: db_url (Config.load fills it in)
    queue_url: str = Field(
        default="", pattern=_PG_URL_OR_EMPTY, description="a postgresql:// URL (empty: db_url)"
    )
    # procrastinate's tables and the job rows live in this schema
    queue_schema: str = Field(
        default="sheaf_queue",
        pattern=_SCHEMA,
        description="a lower-case SQL identifier (a-z, 0-9, _; at most 63 characters; no leading digit)",
    )
    # a job no worker has started after this long is given up (the batch is attested)
    queue_pickup_timeout_s: float = Field(default=600.0, gt=0)
    # a worker whose heartbeat is older than this lost its job: the job runs again elsewhere (the
    # workers' --heartbeat-s must be well below it)
    queue_stalled_after_s: float = Field(default=30.0, ge=2)
    # recursive batches in the queue at once (the workers prove them in parallel); local: always 1
    queue_max_inflight: int = Field(default=4, ge=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecursionConfig:
        """The `[aggregator.recursion]` table alone; ConfigInvalid naming `recursion.<key>`."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            key, message = first_error(e, cls, "unknown key")
            raise ConfigInvalid("recursion." + key, message) from None


class Config(BaseModel):
    model_config = _MODEL

    db_path: str = "sheaf-aggregator.db"
    # PostgreSQL instead of SQLite: "postgresql://user@host:port/db" (the password is better in
    # PGPASSWORD or ~/.pgpass than here). Several instances may share it; one leads (lease below).
    db_url: str = Field(
        default="", pattern=_PG_URL_OR_EMPTY, description="a postgresql:// URL (SQLite is db_path)"
    )
    # a dead leader is replaced within ~1.2x this (aggregator.leader)
    lease_ttl_s: float = Field(default=5.0, ge=1)
    instance_name: str = ""  # shown as the lease holder (with a random suffix); empty: host:pid
    grpc_listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    max_message_bytes: int = 4 * 1024 * 1024
    default_domain: int = 1
    # Domains this aggregator serves (each must exist in the registry); [] accepts any (benchmarks only).
    domains: list[int] = [1]
    # Batching
    max_leaves: int = Field(default=64, ge=1)
    max_wait_ms: int = 2000
    # Chain spend bound: a partial batch (fewer than max_leaves) of a domain and kind closes at most
    # once per this many seconds; full batches are never held. 0: off (aggregator/batcher.py).
    min_post_interval_s: float = 0.0
    batch_tick_ms: int = 50
    # Attestation: the operator set (addresses) and the threshold k; operators talk to grpc_listen.
    operators: list[str] = []
    threshold: int = Field(default=1, ge=1)  # at most len(operators) (Config.check)
    # Operators sign a deadline this far ahead; the registry refuses the attestation after it
    # (at most SheafRegistry.MAX_ATTESTATION_TTL, 1 day). A batch is collected again, never posted
    # stale, when a quarter of this is left (docs/contracts.md, "Expiry").
    attest_ttl_s: int = Field(
        default=600,
        ge=20,
        le=86_400,
        description="an integer in 20..86400 (the registry's MAX_ATTESTATION_TTL)",
    )
    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    registry: str = ""  # registry address; empty: read deployments/<chainId>.json
    deployments_dir: str = "deployments"
    confirmations: int = Field(default=2, ge=0)
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
    allowlist: list[str] = []
    rate_per_s: float = 50.0
    burst: int = 100
    max_queued_per_prover: int = 10_000
    # Quotas (rate_per_s, burst) bind to an allowlisted prover's address, else to the client's network
    # (its IPv4 address, or IPv6 /64): a fresh address is free to make, a network is not. Clients in
    # these networks are trusted (local tools, tests): they are limited by their claimed address only.
    rate_exempt: list[str] = ["127.0.0.0/8", "::1/128"]
    # Ingest and verification (normalizers.Normalizer)
    commit_group_max: int = 256
    srs_path: str = ""  # ezkl KZG SRS (a k=1 verifier cut suffices); empty: normalizers' default
    groth16_backend: str = "sidecar"  # or "groth16py" (in-process)
    sidecar_bin: str = ""  # sheaf-gnark; empty: SHEAF_GNARK_BIN, build/bin, PATH
    log_level: str = "INFO"
    # /readyz turns 503 when a domain's oldest unposted batch, or the oldest queued proof, is older
    # than this (a stalled domain); 0 turns the two checks off
    stall_after_s: float = 600.0
    recursion: RecursionConfig = Field(
        default_factory=RecursionConfig, description="a table ([aggregator.recursion])"
    )

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> Config:
        """The `[aggregator]` table of the TOML file at `path` (or the whole file if it has none),
        then `overrides` (None: not given). tomllib.TOMLDecodeError for bad TOML; ConfigInvalid for
        a bad key or value, its `field` the full dotted key, its `file` the path."""
        data: dict[str, Any] = {}
        prefix, file = "", "" if path is None else str(path)
        if path is not None:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
            if "aggregator" in raw:
                data, prefix = raw["aggregator"], "aggregator."
                if not isinstance(data, dict):
                    raise ConfigInvalid("aggregator", "expected a table ([aggregator])", file)
            else:
                data = raw
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            cfg = cls.model_validate(data)
            cfg.check()
        except ValidationError as e:
            key, message = first_error(e, cls, "unknown key")
            raise ConfigInvalid(prefix + key, message, file) from None
        except ConfigInvalid as e:
            raise ConfigInvalid(prefix + e.field, e.message, file) from None
        rc = cfg.recursion
        if rc.queue == "postgres" and not rc.queue_url:  # the queue lives in the store's database
            cfg = cfg.model_copy(update={"recursion": rc.model_copy(update={"queue_url": cfg.db_url})})
        return cfg

    def check(self) -> None:
        """The rules that span several keys; ConfigInvalid naming the key to change."""
        n = len(self.operators)
        if self.operators and self.threshold > n:
            raise ConfigInvalid(
                "threshold", f"expected an integer in 1..{n} (the operators), got {self.threshold}"
            )
        if self.domains and self.default_domain not in self.domains:
            raise ConfigInvalid(
                "default_domain", f"expected one of domains {self.domains}, got {self.default_domain}"
            )
        rc = self.recursion
        if rc.plonk is not None and rc.batch and rc.plonk > rc.batch:
            raise ConfigInvalid(
                "recursion.plonk", f"expected an integer in 0..{rc.batch} (recursion.batch), got {rc.plonk}"
            )
        if rc.queue == "postgres" and not (rc.queue_url or self.db_url):
            raise ConfigInvalid("recursion.queue", '"postgres" needs db_url (or recursion.queue_url)')


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
