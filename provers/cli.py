"""`prover`: slice an ONNX model, prove the slices, submit them to the aggregator.

    prover model   --out sample_mlp.onnx                       write the reference sample model
    prover inspect --model M.onnx --config slices.toml         per-slice shapes/ops/backend support
    prover slice   --model M.onnx --config slices.toml --out D  same report, and write each slice's .onnx
    prover prove   --model M.onnx --config slices.toml --out D  prove; D/proofs.json lists the proofs
                   [--slices a,b]                               prove only these (others: onnxruntime)
    prover submit  --proofs D/proofs.json --aggregator H:P [--rpc URL]
    prover run     --model M.onnx --config slices.toml --aggregator H:P [--rpc URL] [--out D]
    prover infer   --model M.onnx --config slices.toml --aggregator H:P [--rpc URL] [--out D]
                   prove, then submit the whole inference in one call (model registered, one id,
                   one receipt checked with the SDK; D/model.json, D/receipt.json)
    prover submit-inference --proofs D/proofs.json --aggregator H:P [--rpc URL]   same, proofs given

Errors print `CODE: message` on stderr and exit 2 (bad input) or 1 (backend/submission failure).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import onnx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from provers.errors import ProverError
from provers.inference import submit_inference
from provers.model import write_sample_model
from provers.pipeline import (
    ModelRun,
    SliceProof,
    SubmitResult,
    load_run_manifest,
    load_run_slices,
    run_model,
    submit_and_wait,
)
from provers.slicer import format_report, load_config, load_model, slice_model
from sheaf.logs import add_log_format_argument, log_format, setup_logging

_INPUT_CODES = {
    "PROVER_CONFIG_INVALID",
    "PROVER_MODEL_INVALID",
    "PROVER_UNSUPPORTED_OP",
    "PROVER_UNSUPPORTED_SHAPE",
}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _model_and_config(a: argparse.Namespace) -> tuple[Path | None, Path]:
    return (Path(a.model) if a.model else None), Path(a.config)


def _short(b: bytes | None) -> str:
    return "-" if not b else "0x" + b.hex()[:12] + "…"


def proof_grid(proofs: Sequence[SliceProof], results: Sequence[SubmitResult] | None = None) -> Table:
    """One row per proven slice (and its submission's outcome). Borderless, so that each row stays
    one whitespace-separated line for scripts reading stdout."""
    by_name = {r.name: r for r in results or ()}
    head = ["slice", "backend", "prove_s", "proof_B", "statement", "agg_id", "kind", "tx", "gas", "on_chain"]
    t = Table(box=None, pad_edge=False, header_style="bold")
    for h in head:
        t.add_column(h, justify="right" if h in ("prove_s", "proof_B", "agg_id", "gas") else "left")
    for p in proofs:
        r = by_name.get(p.name)
        t.add_row(
            p.name,
            p.backend,
            f"{p.prove_seconds:.2f}",
            str(p.proof_size),
            _short(r.statement_hash) if r else "-",
            str(r.aggregation_id) if r and r.aggregation_id is not None else "-",
            (r.kind or r.status) if r else "-",
            _short(r.tx_hash) if r else "-",
            str(r.gas_used) if r and r.gas_used is not None else "-",
            ("yes" if r.included_on_chain else "NO") if r and r.included_on_chain is not None else "-",
        )
    return t


def proof_table(proofs: Sequence[SliceProof], results: Sequence[SubmitResult] | None = None) -> str:
    """proof_grid as plain text lines (no styling), for callers that indent or log them (demo)."""
    buf = io.StringIO()
    Console(file=buf, width=10_000, color_system=None, soft_wrap=True).print(proof_grid(proofs, results))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def _print_table(t: Table) -> None:
    """On a terminal rich fits the table to it; elsewhere (pipes, files, tests) rows are never
    wrapped or cut, whatever their width."""
    tty = sys.stdout.isatty()
    Console(file=sys.stdout, width=None if tty else 10_000, soft_wrap=not tty).print(t)


class ProveDisplay:
    """The proving's progress on stderr. On a terminal: a rich progress bar per ezkl slice, advanced
    at each proving stage (settings .. verify), with the slice lines printed above the bars.
    Elsewhere (CI logs, tests, pipes): plain lines, one per slice event and per stage."""

    def __init__(self, tty: bool | None = None, console: Console | None = None) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.console = console or Console(file=sys.stderr)
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    @contextmanager
    def shown(self) -> Iterator[ProveDisplay]:
        if not self.tty:
            yield self
            return
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        with self.bars:
            yield self
        self.bars = None

    def line(self, msg: str) -> None:
        if self.bars is None:
            _err(msg)
        else:
            self.bars.console.print(msg, markup=False, highlight=False)

    def stage(self, tag: str, stage: str, done: int, total: int) -> None:
        if self.bars is None:
            if stage != "done":  # the pipeline's own "done in" line follows
                _err(f"{tag}: ezkl {stage} ({done + 1}/{total})")
            return
        if tag not in self.tasks:
            self.tasks[tag] = self.bars.add_task(tag, total=total)
        self.bars.update(self.tasks[tag], completed=done, description=f"{tag}: {stage}")


def cmd_model(a: argparse.Namespace) -> int:
    print(write_sample_model(Path(a.out), a.seed))
    return 0


def cmd_inspect(a: argparse.Namespace) -> int:
    model_path, config_path = _model_and_config(a)
    cfg = load_config(config_path)
    path = model_path or cfg.model_path
    if path is None:
        raise ProverError("PROVER_CONFIG_INVALID", "model.path: no model given (config or --model)")
    slices = slice_model(load_model(path), cfg)
    print(format_report(slices))
    if getattr(a, "out", None):
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(slices):
            onnx.save(s.model, str(out / f"{i:02d}-{s.config.name}.onnx"))
        print(f"slices written to {out}")
    bad = [s for s in slices if not s.report.supported]
    if bad:
        for s in bad:
            _err(str(s.report.problem))
        return 2
    return 0


def _only(a: argparse.Namespace) -> list[str] | None:
    return [s for s in a.slices.split(",") if s] if getattr(a, "slices", None) else None


def _run_model(a: argparse.Namespace, out: Path) -> ModelRun:
    model_path, config_path = _model_and_config(a)
    with ProveDisplay().shown() as d:
        return run_model(model_path, config_path, out, progress=d.line, only=_only(a), stages=d.stage)


def cmd_prove(a: argparse.Namespace) -> int:
    run = _run_model(a, Path(a.out))
    _print_table(proof_grid(run.proofs))
    for c in run.chain:
        state = f"linked ({c.commitment})" if c.linked else "not linked (different commitment schemes)"
        print(f"chain {c.prev} -> {c.next} via {c.tensor}: {state}")
    print(f"proofs: {Path(a.out) / 'proofs.json'}")
    return 0


def _submit(proofs: Sequence[SliceProof], a: argparse.Namespace) -> int:
    key = os.environ.get("SHEAF_PROVER_KEY")
    results = submit_and_wait(
        proofs,
        a.aggregator,
        rpc_url=a.rpc,
        prover_key=key,
        domain_id=a.domain,
        timeout=a.timeout,
        progress=lambda m: _err(m),
    )
    _print_table(proof_grid(proofs, results))
    failed = [r for r in results if r.status != "FINALIZED" or r.included_on_chain is False]
    return 1 if failed else 0


def cmd_submit(a: argparse.Namespace) -> int:
    return _submit(load_run_manifest(Path(a.proofs)), a)


def cmd_run(a: argparse.Namespace) -> int:
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="sheaf-prover-"))
    return _submit(_run_model(a, out).proofs, a)


def _infer(
    run_dir: Path, slices: Sequence[tuple[str, bool]], proofs: Sequence[SliceProof], a: argparse.Namespace
) -> int:
    r = submit_inference(
        slices,
        proofs,
        a.aggregator,
        domain_id=a.domain,
        timeout=a.timeout,
        out_dir=run_dir,
        rpc_url=a.rpc,
        progress=lambda m: _err(m),
    )
    print(f"model      0x{r.model_id.hex()} ({len(r.model)} slices, {sum(s.proven for s in r.model)} proven)")
    print(f"inference  {r.inference_id}: {r.status} in {r.seconds:.1f}s")
    if r.result is None or r.receipt is None:
        return 1
    where = "on-chain registry" if a.rpc else "the receipt's roots"
    print(f"receipt    verified with the SDK (inclusion: {where}); fully proven: {r.result.fully_proven}")
    print(f"input      {hex(r.receipt.input_commitment)}")
    print(f"output     {', '.join(hex(v) for v in r.result.output)} (slice {r.result.output_slice})")
    print(f"files      {run_dir / 'model.json'}, {run_dir / 'receipt.json'}")
    return 0


def cmd_infer(a: argparse.Namespace) -> int:
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="sheaf-prover-"))
    run = _run_model(a, out)
    return _infer(out, [(s.config.name, s.config.proven) for s in run.slices], run.proofs, a)


def cmd_submit_inference(a: argparse.Namespace) -> int:
    path = Path(a.proofs)
    return _infer(path.parent, load_run_slices(path), load_run_manifest(path), a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prover", description=__doc__.splitlines()[0])
    add_log_format_argument(p, "text")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model", help="write the reference sample model")
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=7)
    m.set_defaults(fn=cmd_model)
    for name, fn, help_ in (
        ("inspect", cmd_inspect, "per-slice report"),
        ("slice", cmd_inspect, "report and write each slice's ONNX"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--model")
        s.add_argument("--config", required=True)
        if name == "slice":
            s.add_argument("--out", required=True)
        s.set_defaults(fn=fn)
    pr = sub.add_parser("prove", help="prove the configured slices into a folder")
    pr.add_argument("--model")
    pr.add_argument("--config", required=True)
    pr.add_argument("--out", required=True)
    pr.add_argument("--slices", help="comma-separated slice names to prove (default: all proven slices)")
    pr.set_defaults(fn=cmd_prove)

    def submit_args(s: argparse.ArgumentParser) -> None:
        s.add_argument("--aggregator", required=True, help="HOST:PORT of the aggregator's gRPC endpoint")
        s.add_argument("--rpc", help="JSON-RPC URL of the chain, to check inclusion on-chain")
        s.add_argument("--domain", type=int, default=0)
        s.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for finalization")

    su = sub.add_parser("submit", help="submit proofs listed in a proofs.json")
    su.add_argument("--proofs", required=True)
    submit_args(su)
    su.set_defaults(fn=cmd_submit)
    r = sub.add_parser("run", help="prove, submit, follow to finalization, check inclusion")
    r.add_argument("--model")
    r.add_argument("--config", required=True)
    r.add_argument("--out")
    r.add_argument("--slices", help="comma-separated slice names to prove (default: all proven slices)")
    submit_args(r)
    r.set_defaults(fn=cmd_run)
    inf = sub.add_parser(
        "infer", help="prove, then submit the whole inference as one unit and check its receipt"
    )
    inf.add_argument("--model")
    inf.add_argument("--config", required=True)
    inf.add_argument("--out")
    inf.add_argument("--slices", help="comma-separated slice names to prove (the others run unproven)")
    submit_args(inf)
    inf.set_defaults(fn=cmd_infer)
    si = sub.add_parser("submit-inference", help="submit a proofs.json as one whole inference")
    si.add_argument("--proofs", required=True)
    submit_args(si)
    si.set_defaults(fn=cmd_submit_inference)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        fmt = log_format(a.log_format, "text")
    except ValueError as e:
        _err(f"PROVER_CONFIG_INVALID: {e}")
        return 2
    # the libraries' warnings (web3, grpc) in the chosen format; our own output is the tables
    # and the progress lines
    setup_logging("WARNING", fmt)
    try:
        return int(a.fn(a))
    except ProverError as e:
        _err(str(e))
        return 2 if e.code in _INPUT_CODES else 1


if __name__ == "__main__":
    raise SystemExit(main())
