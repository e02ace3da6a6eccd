"""Halo2 (KZG, BN254) as produced by ezkl 23: proof.json + vk.key + settings.json + an SRS path.

Strict decoding happens here; verification is ezkl's own `ezkl.verify`, fed through memfd paths so
nothing touches the disk. Canonical forms (docs/envelope.md):

    public inputs = `instances` flattened in order, each little-endian hex -> 32-byte big-endian
    proof         = the proof bytes exactly as they appear in ezkl's EVM calldata (`bytes proof`)
    vk            = "ezkl-halo2-kzg-bn254/v1" | u32 BE len(vk.key) | vk.key | u32 BE len(S) | S
                    where S is the canonical JSON (sorted keys, no whitespace) of settings.json with
                    only `timestamp` and `version` removed: every other field either shapes the
                    circuit or changes how instances are read (scales, visibility, shapes), and the
                    proof does not bind those on its own. The order of `required_range_checks` and
                    `required_lookups` is bound too: ezkl collects them from hash sets (so a fresh
                    `calibrate_settings` may list them in another order) but lays out the circuit in
                    the listed order, and a proof does not verify with its settings' range checks
                    permuted (tested). Producers make that order canonical before compiling the
                    circuit (the reference prover sorts them: provers.ezkl_backend.stable_settings),
                    which is what makes the same model proved twice give one vk hash.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import ezkl

from normalizers.base import Context, ParsedVk, Pending, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import check_count
from normalizers.statement import BN254_R, Scheme
from sheaf.lru import LRU
from sheaf.srs_id import SrsError, read_verifier_points

VK_DOMAIN = b"ezkl-halo2-kzg-bn254/v1"
# ezkl 23.0.x settings.json (GraphSettings) top-level and run_args keys. Unknown keys are rejected
# rather than silently left out of (or put into) the vk hash.
SETTINGS_KEYS = frozenset(
    {
        "run_args", "num_rows", "total_assignments", "total_const_size", "total_dynamic_col_size",
        "max_dynamic_input_len", "num_dynamic_lookups", "num_shuffles", "total_shuffle_col_size",
        "einsum_params", "model_instance_shapes", "model_output_scales", "model_input_scales",
        "module_sizes", "required_lookups", "required_range_checks", "check_mode", "version",
        "num_blinding_factors", "timestamp", "input_types", "output_types",
    }
)  # fmt: skip
SETTINGS_OPTIONAL = frozenset(
    {"timestamp", "num_blinding_factors", "input_types", "output_types", "einsum_params"}
)
RUN_ARGS_KEYS = frozenset(
    {
        "input_scale", "param_scale", "rebase_scale", "scale_rebase_multiplier", "lookup_range", "logrows",
        "num_inner_cols", "variables", "input_visibility", "output_visibility", "param_visibility",
        "rebase_frac_zero_constants", "check_mode", "decomp_base", "decomp_legs", "bounded_log_lookup",
        "ignore_range_check_inputs_outputs", "epsilon", "disable_freivalds",
    }
)  # fmt: skip
UNBOUND_SETTINGS = ("timestamp", "version")
PROOF_KEYS = frozenset(
    {"protocol", "instances", "proof", "hex_proof", "transcript_type", "split", "pretty_public_inputs",
     "timestamp", "commitment", "version"}
)  # fmt: skip
PROOF_REQUIRED = frozenset({"instances", "proof"})
MAX_LOGROWS = 26

_HEX64 = re.compile(r"[0-9a-f]{64}")


# ---------------------------------------------------------------- settings / vk


def bound_settings(settings: dict[str, Any]) -> bytes:
    """The canonical JSON of the settings subset the vk hash binds (see module docstring)."""
    bound = {k: v for k, v in settings.items() if k not in UNBOUND_SETTINGS}
    return json.dumps(
        bound, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def parse_settings(data: bytes, ctx: Context) -> dict[str, Any]:
    v = loads("settings", data, ctx.limits, allow_float=True)
    if not isinstance(v, dict):
        raise NormalizeError(Code.MALFORMED, "settings", f"expected a JSON object, got {type(v).__name__}")
    missing = sorted(SETTINGS_KEYS - SETTINGS_OPTIONAL - v.keys())
    if missing:
        raise NormalizeError(Code.MALFORMED, f"settings.{missing[0]}", "missing field")
    extra = sorted(v.keys() - SETTINGS_KEYS)
    if extra:
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"settings.{extra[0][:40]}", "unknown field for ezkl 23 settings"
        )
    ver = v["version"]
    if not isinstance(ver, str) or not ver.startswith("23."):
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, "settings.version", f"expected an ezkl 23.x version, got {ver!r:.40}"
        )
    ra = v["run_args"]
    if not isinstance(ra, dict):
        raise NormalizeError(Code.MALFORMED, "settings.run_args", "expected a JSON object")
    extra = sorted(ra.keys() - RUN_ARGS_KEYS)
    if extra:
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"settings.run_args.{extra[0][:40]}", "unknown run_args field"
        )
    missing = sorted(RUN_ARGS_KEYS - {"epsilon", "disable_freivalds", "rebase_scale"} - ra.keys())
    if missing:
        raise NormalizeError(Code.MALFORMED, f"settings.run_args.{missing[0]}", "missing field")
    lr = ra["logrows"]
    if not isinstance(lr, int) or isinstance(lr, bool) or not 1 <= lr <= MAX_LOGROWS:
        raise NormalizeError(
            Code.MALFORMED, "settings.run_args.logrows", f"expected an integer in 1..{MAX_LOGROWS}"
        )
    for k in ("input_visibility", "output_visibility", "param_visibility"):
        if not isinstance(ra[k], str | dict):
            raise NormalizeError(Code.MALFORMED, f"settings.run_args.{k}", "expected a visibility")
    shapes = v["model_instance_shapes"]
    if not isinstance(shapes, list) or not all(
        isinstance(s, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in s)
        for s in shapes
    ):
        raise NormalizeError(
            Code.MALFORMED, "settings.model_instance_shapes", "expected a list of integer shapes"
        )
    return dict(v)


def expected_instance_count(settings: dict[str, Any]) -> int:
    """Number of public field elements in proof.json `instances`: every public tensor listed in
    `model_instance_shapes`, flat and in order, plus one Poseidon digest per "hashed" tensor
    (`module_sizes.poseidon = [rows, [n_digests]]`). ("polycommit" adds none: its KZG commitments
    travel inside the proof.)"""
    total = 0
    for shape in settings["model_instance_shapes"]:
        n = 1
        for d in shape:
            n *= d
        total += n
    mods = settings.get("module_sizes")
    pos = mods.get("poseidon") if isinstance(mods, dict) else None
    if pos is not None:
        if not (
            isinstance(pos, list)
            and len(pos) == 2
            and isinstance(pos[1], list)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in pos[1])
        ):
            raise NormalizeError(
                Code.MALFORMED, "settings.module_sizes.poseidon", "expected [rows, [counts]]"
            )
        total += sum(pos[1])
    return total


def _vk_header_check(vk: bytes) -> None:
    # halo2 VerifyingKey::write (ezkl 23, RawBytes): version byte, k (u8), compress_selectors (u8),
    # u32 LE number of fixed commitments, then 64-byte points ... ; checked loosely here, fully by ezkl.
    if len(vk) < 7:
        raise NormalizeError(
            Code.INVALID_LENGTH, "vk", f"{len(vk)} bytes is too short for a halo2 verifying key"
        )


def parse_ezkl_vk(vk: bytes, settings_raw: bytes | None, ctx: Context) -> ParsedVk:
    if settings_raw is None:
        raise NormalizeError(Code.MALFORMED, "settings", "ezkl needs settings.json to read the verifying key")
    settings = parse_settings(settings_raw, ctx)
    _vk_header_check(vk)
    s = bound_settings(settings)
    canonical = VK_DOMAIN + struct.pack(">I", len(vk)) + vk + struct.pack(">I", len(s)) + s
    n_pub = expected_instance_count(settings)
    return ParsedVk(Scheme.HALO2, canonical, n_pub, native=bytes(vk), settings=bytes(settings_raw))


# ---------------------------------------------------------------- proof


def le_hex_to_be32(v: Any, field: str) -> bytes:
    if not isinstance(v, str):
        raise NormalizeError(Code.MALFORMED, field, f"expected a 64-char hex string, got {type(v).__name__}")
    if not _HEX64.fullmatch(v):
        raise NormalizeError(
            Code.MALFORMED, field, "expected exactly 64 lowercase hex characters (little-endian)"
        )
    le = bytes.fromhex(v)
    n = int.from_bytes(le, "little")
    if n >= BN254_R:
        raise NormalizeError(Code.NON_CANONICAL_SCALAR, field, "field element is not reduced modulo r")
    return n.to_bytes(32, "big")


def proof_bytes(v: Any, field: str, limit: int) -> bytes:
    if not isinstance(v, list):
        raise NormalizeError(Code.MALFORMED, field, f"expected a list of byte values, got {type(v).__name__}")
    if len(v) > limit:
        raise NormalizeError(Code.TOO_LARGE, field, f"{len(v)} bytes exceeds the limit of {limit}")
    try:
        return bytes(v) if set(map(type, v)) <= {int} else _bad_byte(v, field)  # bool is not int here
    except ValueError:
        return _bad_byte(v, field)


def _bad_byte(v: list[Any], field: str) -> bytes:
    for i, x in enumerate(v):
        if type(x) is not int:
            raise NormalizeError(
                Code.MALFORMED, f"{field}[{i}]", f"expected an integer byte, got {type(x).__name__}"
            )
        if not 0 <= x <= 255:
            raise NormalizeError(Code.MALFORMED, f"{field}[{i}]", "byte value out of range 0..255")
    raise NormalizeError(Code.INTERNAL, field, "unreachable")


def parse_ezkl_proof(data: bytes, vk: ParsedVk, ctx: Context) -> tuple[bytes, tuple[bytes, ...], bytes, str]:
    """(canonical proof, public inputs, cleaned proof JSON for ezkl.verify, producer version)."""
    v = loads("proof", data, ctx.limits, allow_float=True)
    if not isinstance(v, dict):
        raise NormalizeError(Code.MALFORMED, "proof", f"expected a JSON object, got {type(v).__name__}")
    extra = sorted(v.keys() - PROOF_KEYS)
    if extra:
        raise NormalizeError(Code.MALFORMED, f"proof.{extra[0][:40]}", "unexpected field")
    missing = sorted(PROOF_REQUIRED - v.keys())
    if missing:
        raise NormalizeError(Code.MALFORMED, f"proof.{missing[0]}", "missing field")
    inst = v["instances"]
    if not isinstance(inst, list) or not all(isinstance(col, list) for col in inst):
        raise NormalizeError(
            Code.MALFORMED, "proof.instances", "expected a list of lists of hex field elements"
        )
    check_count("proof.instances", sum(len(c) for c in inst), ctx.limits.max_public_inputs)
    got = sum(len(c) for c in inst)
    if got != vk.n_public:
        raise NormalizeError(
            Code.PUBLIC_INPUT_COUNT, "proof.instances", f"{got} instances, the settings imply {vk.n_public}"
        )
    pubs = tuple(
        le_hex_to_be32(x, f"proof.instances[{i}][{j}]")
        for i, col in enumerate(inst)
        for j, x in enumerate(col)
    )
    raw = proof_bytes(v["proof"], "proof.proof", ctx.limits.max_proof_bytes)
    if len(raw) == 0 or len(raw) % 32 != 0:
        raise NormalizeError(
            Code.INVALID_LENGTH, "proof.proof", f"{len(raw)} bytes is not a positive multiple of 32"
        )
    hp = v.get("hex_proof")
    if hp is not None and (not isinstance(hp, str) or hp.lower().removeprefix("0x") != raw.hex()):
        raise NormalizeError(Code.MALFORMED, "proof.hex_proof", "does not match proof.proof")
    version = v.get("version")
    ver = version if isinstance(version, str) else ""
    # What ezkl verifies is rebuilt from the validated values only (informational fields dropped).
    clean = {k: v[k] for k in ("protocol", "transcript_type", "split", "commitment", "version") if k in v}
    clean["instances"] = inst
    clean["proof"] = list(raw)
    return raw, pubs, json.dumps(clean, separators=(",", ":")).encode(), ver


# ---------------------------------------------------------------- verification


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


class _KeyFiles:
    """vk.key and settings.json of one vk as memfds, written once and reused by every proof. An fd
    number must not be closed (and reused) while a verification may still open it by path: the
    owner counts `users` and closes only once the files are `dropped` (evicted) and unused."""

    def __init__(self, vk: bytes, settings: bytes) -> None:
        self.vk = _memfd("vk", vk)
        try:
            self.settings = _memfd("settings", settings)
        except BaseException:
            os.close(self.vk)
            raise
        self.users = 0  # verifications in progress; guarded by the owner's lock
        self.dropped = False

    def close(self) -> None:
        os.close(self.vk)
        os.close(self.settings)


def ezkl_verify(proof_json: bytes, keys: _KeyFiles, srs_path: str) -> NormalizeError | None:
    fd = _memfd("proof", proof_json)
    try:
        ok = ezkl.verify(
            f"/proc/self/fd/{fd}",
            f"/proc/self/fd/{keys.settings}",
            f"/proc/self/fd/{keys.vk}",
            srs_path,
            False,
        )
    except RuntimeError as e:  # ezkl reports every failure (bad points, bad proof) this way
        return NormalizeError(Code.VERIFICATION_FAILED, "proof", f"ezkl: {str(e)[:300]}")
    except BaseException as e:  # a Rust panic surfaces as pyo3 PanicException (BaseException)
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        return NormalizeError(Code.VERIFICATION_FAILED, "proof", f"ezkl rejected the input: {str(e)[:300]}")
    finally:
        os.close(fd)
    return None if ok else NormalizeError(Code.VERIFICATION_FAILED, "proof", "ezkl.verify returned false")


def _with_proof_bytes(clean_json: bytes, raw: bytes) -> bytes:
    v = json.loads(clean_json)
    v["proof"] = list(raw)
    return json.dumps(v, separators=(",", ":")).encode()


class Halo2Verifier:
    """Halo2 behind the `SchemeVerifier` interface; ezkl verifies in-process, one proof at a time,
    when its result is read (so sidecar work of the same call overlaps it). A batch holds no
    state: the verifier is its own `Batch`.

    halo2's transcript reader ignores trailing bytes of both the proof and vk.key, so ezkl.verify
    accepts padded inputs (the EVM verifier does not: it checks the proof length). The first time a
    vk verifies a proof we probe both with their tails cut; exact lengths are then cached per
    vk hash, so later proofs for that vk cost one ezkl.verify and a length compare."""

    scheme: ClassVar[Scheme] = Scheme.HALO2

    MAX_KEY_FILES = 64  # two fds each

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.RLock()  # RLock: LRU.put calls _drop (on_evict) under it
        self._proof_len: LRU[bytes, int] = LRU(ctx.vk_cache_size)  # vk_hash -> exact proof length
        self._files: LRU[bytes, _KeyFiles] = LRU(
            min(self.MAX_KEY_FILES, ctx.vk_cache_size), on_evict=lambda _, kf: self._drop(kf)
        )
        self._srs: tuple[str, str, int | None] | None = None  # (SRS path, verifier SRS path, memfd)
        self._stale_srs_fds: list[int] = []  # replaced cuts (ctx.srs_path changed): closed by close()

    def validate_vk(self, fmt: str, vk: bytes, settings: bytes | None) -> ParsedVk:
        if fmt != "ezkl":
            raise NormalizeError(
                Code.UNSUPPORTED_FORMAT, "format", f"halo2 does not support format {fmt!r:.40}"
            )
        return self.ctx.cached_vk(
            self.scheme, fmt, vk, settings, lambda: parse_ezkl_vk(vk, settings, self.ctx)
        )

    def batch(self) -> Halo2Verifier:
        return self

    def close(self) -> None:
        self._files.clear()  # closes every key file no verification is using
        self._proof_len.clear()
        with self._lock:
            srs, self._srs = self._srs, None
            fds, self._stale_srs_fds = self._stale_srs_fds, []
        if srs is not None and srs[2] is not None:
            fds.append(srs[2])
        for fd in fds:
            os.close(fd)

    # -- Batch
    def submit(
        self, fmt: str, proof: bytes, vk: bytes, public: bytes | None, settings: bytes | None
    ) -> Pending:
        pvk = self.validate_vk(fmt, vk, settings)
        if public is not None:
            raise NormalizeError(
                Code.MALFORMED, "public", "ezkl proofs carry their instances; pass no public file"
            )
        raw, pubs, clean, ver = parse_ezkl_proof(proof, pvk, self.ctx)
        want = self._proof_len.get(pvk.vk_hash)
        if want is not None and len(raw) != want:
            raise NormalizeError(
                Code.INVALID_LENGTH, "proof.proof", f"{len(raw)} bytes, proofs for this vk are {want} bytes"
            )
        st = Statement(pvk, raw, pubs, producer_version=ver, recursion_eligible=False, native_proof=clean)
        return Pending(lambda: self._verify(st))

    def flush(self) -> None:
        pass

    # -- verification
    def _verify(self, s: Statement) -> Statement:
        srs = self.ctx.srs_path
        if srs is None:
            raise NormalizeError(Code.MALFORMED, "srs", "halo2 verification needs an SRS path")
        vsrs = self._verifier_srs(srs)
        with self._key_files(s.vk) as keys:
            err = self._verify_with(s, keys, vsrs)
        if err is not None:
            raise err
        return s

    @contextmanager
    def _key_files(self, vk: ParsedVk) -> Iterator[_KeyFiles]:
        with self._lock:
            kf = self._files.get(vk.vk_hash)
            if kf is None:
                kf = _KeyFiles(vk.native, vk.settings)
                self._files.put(vk.vk_hash, kf)
            kf.users += 1
        try:
            yield kf
        finally:
            with self._lock:
                kf.users -= 1
                if kf.dropped and kf.users == 0:
                    kf.close()

    def _drop(self, kf: _KeyFiles) -> None:
        with self._lock:
            kf.dropped = True
            if kf.users == 0:
                kf.close()

    def _verifier_srs(self, path: str) -> str:
        """A k=1 cut of the SRS in a memfd (g1[0], g2, s_g2 are all KZG verification reads). Given a
        larger SRS, ezkl.verify would downsize it (recomputing Lagrange bases) on every call. Made
        once per SRS path (ctx.srs_path), closed by `close`."""
        with self._lock:
            if self._srs is not None and self._srs[0] == path:
                return self._srs[1]
        try:
            pts = read_verifier_points(path)
        except SrsError as e:
            raise NormalizeError(Code.MALFORMED, "srs", e.message) from None
        k = pts.k
        fd = None if k == 1 else _memfd("srs", pts.k1_cut())
        out = path if fd is None else f"/proc/self/fd/{fd}"
        with self._lock:
            if self._srs is not None and self._srs[0] == path:  # another thread made it first
                if fd is not None:
                    os.close(fd)
                return self._srs[1]
            if self._srs is not None and self._srs[2] is not None:
                self._stale_srs_fds.append(self._srs[2])  # a verification may still read it
            self._srs = (path, out, fd)
        return out

    def _verify_with(self, s: Statement, keys: _KeyFiles, srs: str) -> NormalizeError | None:
        err = ezkl_verify(s.native_proof, keys, srs)
        if err is not None:
            return err
        key = s.vk.vk_hash
        known = self._proof_len.get(key)
        if known is not None:
            return (
                None
                if known == len(s.proof)
                else NormalizeError(
                    Code.INVALID_LENGTH,
                    "proof.proof",
                    f"{len(s.proof)} bytes, proofs for this vk are {known} bytes",
                )
            )
        cut_vk = _KeyFiles(s.vk.native[:-1], s.vk.settings)
        try:
            if ezkl_verify(s.native_proof, cut_vk, srs) is None:
                return NormalizeError(
                    Code.INVALID_LENGTH, "vk", "trailing bytes after the halo2 verifying key"
                )
        finally:
            cut_vk.close()
        if ezkl_verify(_with_proof_bytes(s.native_proof, s.proof[:-32]), keys, srs) is None:
            return NormalizeError(Code.INVALID_LENGTH, "proof.proof", "trailing bytes after the halo2 proof")
        self._proof_len.put(key, len(s.proof))
        return None
