"""sheaf-client: Python client for the Sheaf aggregator (gRPC).

    from sheaf_client import Client
    with Client("127.0.0.1:50051") as c:
        final = c.submit_and_wait("groth16", "snarkjs", proof, vk=vk, public=public, timeout=120)
        if final.status is ProofStatus.FINALIZED:
            receipt = c.inclusion(final.proof_id)

AsyncClient is the same API with `await`. Errors: SheafError (status, code, field, message).
"""

from sheaf_client._async import NO_RETRY, AsyncClient, Retry
from sheaf_client.errors import RATE_LIMIT_CODES, SheafError, WaitTimeout
from sheaf_client.inference import (
    InferenceError,
    InferenceReceipt,
    InferenceResult,
    InferenceStatus,
    InferenceSubmitted,
    ReceiptSlice,
    SliceInput,
    SliceSpec,
    model_id,
    verify_receipt,
)
from sheaf_client.statement import keccak256, pubs_hash, statement_hash, submission_digest
from sheaf_client.sync import Client
from sheaf_client.types import (
    BATCH_STATES,
    Aggregation,
    AggregationKind,
    InclusionProof,
    Page,
    ProofStatus,
    ProofSummary,
    ProverAuth,
    Scheme,
    StatusUpdate,
    SubmitResult,
)

__all__ = [
    "BATCH_STATES",
    "NO_RETRY",
    "RATE_LIMIT_CODES",
    "Aggregation",
    "AggregationKind",
    "AsyncClient",
    "Client",
    "InclusionProof",
    "InferenceError",
    "InferenceReceipt",
    "InferenceResult",
    "InferenceStatus",
    "InferenceSubmitted",
    "Page",
    "ProofStatus",
    "ProofSummary",
    "ProverAuth",
    "ReceiptSlice",
    "Retry",
    "Scheme",
    "SheafError",
    "SliceInput",
    "SliceSpec",
    "StatusUpdate",
    "SubmitResult",
    "WaitTimeout",
    "keccak256",
    "model_id",
    "pubs_hash",
    "statement_hash",
    "submission_digest",
    "verify_receipt",
]
__version__ = "0.1.0"
