#!/usr/bin/env node
// Source verification by Sourcify's reference implementation (@ethereum-sourcify/lib-sourcify):
// compile each contract's standard-JSON input with the project's solc and match the result
// against the chain's runtime code and creation transaction, exactly as sourcify.dev does.
//
// stdin:  {"rpcUrl": "...", "chainId": 31337, "solc": "/path/to/solc", "cacheDir": "..." | null,
//          "contracts": [{"address", "contractIdentifier": "path:Name", "compilerVersion",
//                         "creationTransactionHash" | null, "stdJsonInput"}]}
// stdout: {"results": [{"address", "runtimeMatch", "creationMatch", "immutables", "metadata",
//                       "immutableReferences", "error": null | {"code", "message"}}]}
// runtimeMatch/creationMatch are lib-sourcify's: "perfect" | "partial" | null. A per-contract
// failure (no match, compile error, no code) is a result with `error`; only a broken job (bad
// input, lib-sourcify missing) exits non-zero, with one line on stderr.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function die(msg) {
  process.stderr.write(`sourcify_verify: ${msg}\n`);
  process.exit(3);
}

let lib;
try {
  lib = await import('@ethereum-sourcify/lib-sourcify');
} catch (e) {
  die(`cannot load @ethereum-sourcify/lib-sourcify (run \`make setup\`): ${e.message}`);
}
const { SolidityCompilation, SourcifyChain, Verification, setLibSourcifyLoggerLevel } = lib.default ?? lib;
setLibSourcifyLoggerLevel(0); // its info/debug lines would go to stdout, which carries our JSON

function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${cmd} exited ${code}: ${Buffer.concat(err).toString('utf8').trim()}`));
    });
    p.stdin.end(input);
  });
}

// lib-sourcify's ISolidityCompiler over the project's one pinned solc binary (tools/solc, solc-js
// behind the native CLI): lib-sourcify would otherwise download the requested compiler, which is
// neither possible here nor wanted (the deploy compiled with this binary).
class ProjectSolc {
  constructor(binary, cacheDir) {
    this.binary = binary;
    this.cacheDir = cacheDir;
  }

  async compile(version, solcJsonInput) {
    const input = JSON.stringify(solcJsonInput);
    // solc-js is slow (seconds per compile) and lib-sourcify asks for its own output selection, so
    // its outputs are cached beside the deploy compiler's, keyed by requested version + input.
    const key = createHash('sha256').update(`sourcify\0${version}\0${input}`).digest('hex');
    const cached = this.cacheDir ? join(this.cacheDir, `sourcify-${key}.json`) : null;
    let output = null;
    if (cached) {
      try {
        output = JSON.parse(readFileSync(cached, 'utf8'));
      } catch {
        /* not cached yet */
      }
    }
    if (output === null) output = JSON.parse(await run(this.binary, ['--standard-json'], input));
    const errors = (output.errors || []).filter((e) => e.severity === 'error');
    if (errors.length) {
      // lib-sourcify reads `errors` off the thrown error (its compiler contract)
      const e = new Error(errors.map((x) => x.formattedMessage || x.message).join('; '));
      e.errors = errors;
      throw e;
    }
    // One binary serves every request: refuse a version it is not (read from the output's
    // metadata, which saves a `solc --version` process per run).
    const first = Object.values(output.contracts || {}).flatMap((c) => Object.values(c))[0];
    const built = first ? JSON.parse(first.metadata).compiler.version : null;
    if (built && built !== version.replace(/^v/, '')) {
      throw new Error(`compiler ${version} requested, but the project's solc is ${built}`);
    }
    if (cached) {
      mkdirSync(this.cacheDir, { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(output));
      renameSync(tmp, cached);
    }
    return output;
  }
}

function describe(e) {
  const code = e.code || 'error';
  let message = e.message || String(e);
  if (e.compilerErrors) message += ': ' + e.compilerErrors.map((x) => x.formattedMessage || x.message).join('; ');
  return { code: String(code), message: message.trim() };
}

async function verifyOne(solc, chain, c) {
  const sep = c.contractIdentifier.lastIndexOf(':'); // a path may contain ':'; the name cannot
  const target = { path: c.contractIdentifier.slice(0, sep), name: c.contractIdentifier.slice(sep + 1) };
  const result = {
    address: c.address,
    runtimeMatch: null,
    creationMatch: null,
    immutables: {},
    metadata: null,
    immutableReferences: {},
    error: null,
  };
  let compilation;
  try {
    compilation = new SolidityCompilation(solc, c.compilerVersion, c.stdJsonInput, target);
    const v = new Verification(compilation, chain, c.address, c.creationTransactionHash || undefined);
    await v.verify();
    Object.assign(result, v.status);
    result.immutables = v.transformations.runtime.values.immutables || {};
  } catch (e) {
    result.error = describe(e);
  }
  try {
    // the recompiled metadata, byte-exact (its hash is in the code), for Sourcify's repository layout
    result.metadata = compilation.contractCompilerOutput.metadata;
    result.immutableReferences = compilation.immutableReferences || {};
  } catch {
    /* never compiled: no code on chain, or a compile error */
  }
  return result;
}

async function main() {
  let job;
  try {
    job = JSON.parse(readFileSync(0, 'utf8'));
  } catch (e) {
    die(`the job on stdin is not JSON: ${e.message}`);
  }
  for (const k of ['rpcUrl', 'chainId', 'solc', 'contracts']) if (job[k] === undefined) die(`job has no ${k}`);
  const chain = new SourcifyChain({
    name: `chain ${job.chainId}`,
    chainId: job.chainId,
    rpcs: [{ rpc: job.rpcUrl, maskedUrl: job.rpcUrl }], // (the README's `rpc: [...]` is the pre-3.x shape)
    supported: true,
  });
  const solc = new ProjectSolc(job.solc, job.cacheDir || null);
  const results = [];
  for (const c of job.contracts) results.push(await verifyOne(solc, chain, c)); // one solc at a time: 2 cores
  // exit explicitly: ethers' provider keeps the event loop alive for seconds after the last call
  process.stdout.write(JSON.stringify({ results }) + '\n', () => process.exit(0));
}

await main();
