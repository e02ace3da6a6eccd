"""`python -m demo`: see demo/run.py."""

from __future__ import annotations

from demo.run import main

if __name__ == "__main__":
    raise SystemExit(main())
