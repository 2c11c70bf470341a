"""The `vmsim` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import vmsim


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmsim", description="A virtual-memory and page-fault simulator faithful to Linux.")
    parser.add_argument("--version", action="version", version=f"vmsim {vmsim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="where does an uninitialised pointer land? the kernel's steps, address by address")
    demo.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="colour the outcomes")
    demo.add_argument("--exit", action="store_true", help="show instead how an exiting process gives its memory back")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and args.exit:
        from vmsim import demo_exit

        return demo_exit.run(sys.stdout)
    if args.command == "demo":
        from vmsim import demo

        color = {"auto": None, "always": True, "never": False}[args.color]
        return demo.run(sys.stdout, color=color)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
