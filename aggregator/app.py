"""`aggregator run`: store + gRPC + HTTP + batcher + chain submitter in one process, with a clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from aggregator import crashpoints
from aggregator.admission import ProofVerifier
from aggregator.chain import Chain
from aggregator.config import Config, RecursionConfig, load_key
from aggregator.http import HttpApi
from aggregator.leader import Leadership, PgLease, SoleLeader
from aggregator.metrics import Metrics
from aggregator.proving import BatchProver
from aggregator.records import ChainInfo
from aggregator.recursion import (
    KIND_FLAT,
    KIND_TREE,
    RecursionPlan,
    RecursiveProver,
    cache_root,
    manifest_recursive,
    plan_recursion,
    queue_from_config,
    tree_cache_dir,
)
from aggregator.server import GrpcServer
from aggregator.service import Service
from aggregator.store import SqliteStore, Store
from aggregator.store_pg import PostgresStore
from aggregator.submitter import StoreLedger, Submitter
from aggregator.tree_prover import TreeProver
from normalizers.api import Normalizer
from sheaf.recursion_tree import tree_cache_root

log = logging.getLogger("sheaf.app")


def registry_from_manifest(deployments_dir: str, chain_id: int) -> str:
    p = Path(deployments_dir) / f"{chain_id}.json"
    if not p.exists():
        raise ValueError(f"no registry configured and no deployment manifest at {p}")
    m = json.loads(p.read_text())
    for cand in (m.get("contracts", {}).get("SheafRegistry"), m.get("SheafRegistry"), m.get("registry")):
        if isinstance(cand, dict) and "address" in cand:
            return str(cand["address"])
        if isinstance(cand, str):
            return cand
    raise ValueError(f"{p} names no SheafRegistry address")


def make_normalizer(cfg: Config) -> Any:
    return Normalizer(
        srs=cfg.srs_path or None, sidecar_bin=cfg.sidecar_bin or None, groth16_backend=cfg.groth16_backend
    )


class _OwnedProver(BatchProver, Protocol):
    def start(self) -> None:
        """Spawn the worker(s) in the background; returns at once."""
        ...


class _BuiltProver(NamedTuple):
    prover: _OwnedProver
    summary: str  # the startup line's description of the circuit
    keys: str  # where its keys are


def _tree_prover(plan: RecursionPlan, rc: RecursionConfig, normalizer: Any, metrics: Metrics) -> _BuiltProver:
    assert plan.tree is not None
    p = TreeProver(
        plan.tree,
        circuit_hashes=plan.circuit_hashes,
        normalizer=normalizer,
        metrics=metrics,
        binary=rc.worker_bin,
        cache_dir=tree_cache_dir(rc),
        batch=plan.batch,
        max_attempts=rc.max_attempts,
        job_timeout_s=rc.prove_timeout_s,
        ready_timeout_s=rc.ready_timeout_s,
        queue=queue_from_config(rc) if rc.queue == "postgres" else None,
        queue_pickup_timeout_s=rc.queue_pickup_timeout_s,
        queue_max_inflight=rc.queue_max_inflight,
    )
    levels = ", ".join(f"{lv}: {h[:16]}" for lv, h in enumerate(plan.circuit_hashes))
    summary = f"tree {plan.tree.name}, batches of up to {plan.batch} leaves, levels {levels}"
    return _BuiltProver(p, summary, str(tree_cache_root(p.cache_dir or None)))


def _flat_prover(plan: RecursionPlan, rc: RecursionConfig, normalizer: Any, metrics: Metrics) -> _BuiltProver:
    p = RecursiveProver.from_config(
        rc,
        batch=plan.batch,
        npub=plan.npub,
        plonk=plan.plonk,
        normalizer=normalizer,
        metrics=metrics,
        expected_circuit_hash=plan.circuit_hash,
    )
    summary = (
        f"batch {plan.batch} ({plan.plonk} PLONK slots), npub {plan.npub}, "
        f"circuit {plan.circuit_hash[:16] or 'not pinned'}"
    )
    return _BuiltProver(p, summary, cache_root(rc))


# One factory per RecursionPlan.kind, so both kinds are built, logged and started the same way
_PROVERS: dict[str, Callable[[RecursionPlan, RecursionConfig, Any, Metrics], _BuiltProver]] = {
    KIND_FLAT: _flat_prover,
    KIND_TREE: _tree_prover,
}


class App:
    def __init__(
        self,
        cfg: Config,
        *,
        submitter_key: str | None = None,
        normalizer: Any = None,
        prover: BatchProver | None = None,
    ) -> None:
        self.cfg = cfg
        self.submitter_key = submitter_key
        self.normalizer = normalizer
        self.prover = prover
        self._owned_prover: BatchProver | None = None  # built from cfg.recursion, closed by stop()
        self.stopped = asyncio.Event()

    async def start(self) -> None:
        cfg = self.cfg
        key = self.submitter_key or load_key(
            cfg.submitter_key_env, cfg.submitter_keystore, "SHEAF_SUBMITTER_PASSWORD"
        )
        probe = Chain(cfg.rpc_url, cfg.registry or "0x" + "00" * 20, retries=cfg.rpc_retries)
        try:
            chain_id = await probe.chain_id()
        finally:
            await probe.close()
        registry = cfg.registry or registry_from_manifest(cfg.deployments_dir, chain_id)
        self.chain = Chain(
            cfg.rpc_url,
            registry,
            key,
            gas_margin_pct=cfg.gas_margin_pct,
            retries=cfg.rpc_retries,
            max_fee_per_gas=int(cfg.max_fee_per_gas_gwei * 10**9),
        )
        self.metrics = Metrics()
        if self.normalizer is None:
            self.normalizer = make_normalizer(cfg)
        if self.prover is None:
            self.prover = await self._make_prover(chain_id)
        self.verifier = ProofVerifier(self.normalizer)
        self.lease: Leadership = (
            PgLease(cfg.db_url, ttl_s=cfg.lease_ttl_s, instance=cfg.instance_name, metrics=self.metrics)
            if cfg.db_url
            else SoleLeader(self.metrics, cfg.instance_name)
        )
        self.service = svc = Service(
            cfg,
            open_store(cfg, self.lease.instance),
            self.verifier,
            ChainInfo(chain_id, self.chain.registry),
            self.metrics,
            self.prover,
            read_next_id=self.chain.next_aggregation_id,
        )
        self.grpc = GrpcServer(svc, cfg.grpc_listen)
        self.submitter = Submitter(
            StoreLedger(svc.db),
            svc.ids,
            svc.changes,
            self.metrics,
            self.chain,
            threshold=cfg.threshold,
            confirmations=cfg.confirmations,
            poll_s=cfg.poll_ms / 1000,
            operators=cfg.operators,
            on_chain_view=svc.attesting.observe_chain,
            attest_ttl_s=cfg.attest_ttl_s,
            bump_after_s=cfg.bump_after_s,
            publish_leaves=cfg.recursion.publish_leaves,
        )
        self.http = HttpApi(
            svc.ingest,
            svc.reads,
            svc.chain,
            self.metrics,
            self._ready,
            max_message_bytes=cfg.max_message_bytes,
            details=self._details,
            inferences=svc.inferences,
            chain_calls=self.chain,
        )
        svc.start(lead=False)
        await self.grpc.start()
        await self.http.start(cfg.http_listen)
        # batching, proving, the sweep and posting run while this instance holds the lease (with
        # SQLite: always); submissions, reads and operators are served either way
        self._lease_task = asyncio.create_task(self.lease.run(self._lead, self._follow), name="lease")
        log.info(
            "aggregator up: grpc port %d, http port %d, chain %d, registry %s, db %s, instance %s",
            self.grpc.port,
            self.http.port,
            chain_id,
            self.chain.registry,
            "postgresql" if cfg.db_url else cfg.db_path,
            self.lease.instance,
        )

    async def _lead(self) -> None:
        self.service.start_leading()
        self.submitter.start()

    async def _follow(self) -> None:
        await self.submitter.stop()
        await self.service.stop_leading()

    async def _make_prover(self, chain_id: int) -> BatchProver | None:
        """The prover the configuration and the deployed verifier ask for (docs/operations.md,
        "Recursion"): RecursiveProver (flat) or TreeProver (tree), built by the kind's factory in
        _PROVERS; its worker starts now and loads its keys in the background."""
        rc = self.cfg.recursion
        if rc.enabled is False:
            log.info("recursion: disabled in the configuration; every batch is attested")
            return None
        plan = plan_recursion(
            rc,
            registry_verifier=await self.chain.aggregation_verifier(),
            manifest=manifest_recursive(self.cfg.deployments_dir, chain_id, self.chain.registry),
        )
        if not plan.enabled:
            log.info("recursion: off (%s); every batch is attested", plan.reason)
            return None
        built = _PROVERS[plan.kind](plan, rc, self.normalizer, self.metrics)
        log.info("recursion: on (%s): %s, keys under %s", plan.reason, built.summary, built.keys)
        built.prover.start()
        self._owned_prover = built.prover
        return built.prover

    def _details(self) -> dict[str, Any]:
        """/readyz extras: the lease and, while a tree batch proves, its progress by batch id."""
        proving = self.service.proving.in_progress()
        return {
            "lease": self.lease.state(),
            **({"proving": {str(b): s for b, s in proving.items()}} if proving else {}),
        }

    def _ready(self) -> dict[str, bool]:
        return {
            "accepting": self.service.ingest.accepting,
            "chain": self.submitter.healthy or not self.lease.leading,  # a follower posts nothing
            **({"store": self.lease.reachable} if self.cfg.db_url else {}),  # PostgreSQL reached
            **self.service.stall_checks(),
        }

    async def stop(self) -> None:
        """Graceful: refuse new work, let in-flight RPCs finish and commit, then stop the loops."""
        log.info("shutting down")
        self.service.ingest.accepting = False
        await self.grpc.stop(grace=5.0)
        self._lease_task.cancel()  # stops the leader's loops (if leading)
        await asyncio.gather(self._lease_task, return_exceptions=True)
        await self.lease.release()  # another instance takes over at its next attempt
        await self.submitter.stop()
        await self.service.stop()
        await self.http.stop()
        if self._owned_prover is not None:
            await self._owned_prover.close()
        await self.verifier.close()
        await self.chain.close()
        self.stopped.set()
        log.info("stopped")


def open_store(cfg: Config, instance: str = "") -> Store:
    """PostgreSQL when db_url is set (several instances may share it), else SQLite at db_path."""
    if cfg.db_url:
        return PostgresStore(cfg.db_url, application_name=f"sheaf-aggregator {instance}"[:63])
    return SqliteStore(cfg.db_path)


async def serve(cfg: Config, ready_file: str | None = None) -> None:
    crashpoints.arm_from_env()  # test-only (docs/operations.md)
    app = App(cfg)
    await app.start()
    if ready_file:
        Path(ready_file).write_text(json.dumps({"grpc_port": app.grpc.port, "http_port": app.http.port}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()
