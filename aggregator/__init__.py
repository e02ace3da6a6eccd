"""Sheaf aggregator: batches envelopes into keccak Merkle roots and submits them on-chain."""
