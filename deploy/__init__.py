"""Compile, deploy and source-verify Sheaf's contracts (py-solc-x over the solc-js shim, web3.py)."""
