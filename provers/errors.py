"""The prover's one error type: a stable code plus a message naming the offending field or op."""

from __future__ import annotations

from sheaf.errors import SheafError


class ProverError(SheafError):
    """Codes (stable, matched by tests and callers):

    PROVER_CONFIG_INVALID    slices.toml is malformed; the message names the key
    PROVER_MODEL_INVALID     the ONNX model cannot be loaded or sliced as configured
    PROVER_UNSUPPORTED_OP    a slice contains an op (named) its backend cannot prove
    PROVER_UNSUPPORTED_SHAPE a slice's structure does not fit its backend (names node/tensor)
    PROVER_RANGE             a quantized value leaves the range the circuit checks
    PROVER_BACKEND_FAILED    the backend tool failed (its message is included)
    PROVER_UNSATISFIED       the witness does not satisfy the circuit (e.g. a wrong output)
    PROVER_CHAIN_BROKEN      consecutive slices' commitments do not match
    PROVER_SUBMIT_FAILED     submission to the aggregator failed
    PROVER_MODEL_SPEC        the run cannot be a whole-inference model (a commitment not public, ...)
    """

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(code, field, message)

    def __reduce__(self) -> tuple[type[ProverError], tuple[str, str, str]]:
        return (type(self), (str(self.code), self.message, self.field))
