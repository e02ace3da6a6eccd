"""`aggregator normalize ...` (and `python -m normalizers.cli ...`): one proof in, its envelope out.

Exit codes: 0 valid (envelope printed), 2 rejected (`error: CODE: field: message` on stderr),
1 usage/IO problems other than the proof itself (argparse uses 2 for usage errors too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from normalizers.api import Normalizer, ProofInput
from normalizers.errors import NormalizeError
from sheaf.paths import dev_srs_path
from sheaf.schemes import PRODUCER_NAMES, SCHEME_NAMES, Scheme

EXIT_OK = 0
EXIT_REJECTED = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser("normalize", help="validate + verify one proof and print its envelope")
    add_arguments(p)
    p.set_defaults(func=run, fn=run)  # `fn` is what the aggregator CLI dispatches on
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", required=True, choices=SCHEME_NAMES)
    p.add_argument("--format", required=True, choices=PRODUCER_NAMES)
    p.add_argument("--proof", required=True, type=Path)
    p.add_argument("--vk", required=True, type=Path)
    p.add_argument("--public", type=Path, help="public inputs (snarkjs public.json / gnark public witness)")
    p.add_argument("--settings", type=Path, help="ezkl settings.json")
    p.add_argument("--srs", type=Path, help="KZG SRS file for ezkl (defaults to the INSECURE dev SRS)")
    p.add_argument("--json", action="store_true", help="print the full envelope as one JSON line")


def _read(field: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as e:
        raise NormalizeError("MALFORMED", field, f"cannot read {path}: {e.strerror}") from None


def run(args: argparse.Namespace) -> int:
    try:
        inp = ProofInput(
            scheme=args.scheme,
            format=args.format,
            proof=_read("proof", args.proof) or b"",
            vk=_read("vk", args.vk) or b"",
            public=_read("public", args.public),
            settings=_read("settings", args.settings),
        )
        srs = args.srs
        if srs is None and args.scheme == Scheme.HALO2.label:  # the only scheme with an SRS file
            srs = dev_srs_path()
        with Normalizer(srs=srs) as n:
            env = n.normalize(inp)
    except NormalizeError as e:
        print(f"error: {e.code.value}: {e.field}: {e.message}", file=sys.stderr)
        return EXIT_REJECTED
    if args.json:
        print(env.to_json())
    else:
        print(f"scheme:         {env.scheme} ({env.producer_kind})")
        print(f"statement_hash: 0x{env.statement_hash.hex()}")
        print(f"vk_hash:        0x{env.vk_hash.hex()}")
        print(f"public_inputs:  {len(env.public_inputs)}")
        for i, p in enumerate(env.public_inputs):
            print(f"  [{i}] 0x{p.hex()}")
        print(f"recursion_eligible: {str(env.recursion_eligible).lower()}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="normalize", description="Normalize and verify one proof into a Sheaf envelope"
    )
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
