"""``flowscope``: the agent bundled in this wheel (``flowscope --help``). With no arguments it runs
the agent with its defaults and prints the UI address."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``flowscope`` console script."""
    from . import _native

    try:
        _native.run_agent(["flowscope", *sys.argv[1:]])
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"flowscope: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
