"""`kubelab`: kubectl's everyday verbs against a kubelab API server, plus the lab's own verbs.

Each verb group is a module with `register(subparsers)`, which adds its subcommands and sets
`func` (an `async def f(ctx) -> int`) on them; `main()` imports the modules in `VERB_MODULES`.
One `asyncio.run` per call.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import os
import sys

import httpx

from kubelab.client import ApiError

from .context import CliError, Context, api_error_line, connection_error_line

USAGE_ERROR = 1  # kubectl exits 1 on a bad flag or argument (cobra's error path), not argparse's 2

VERB_MODULES = ("get", "describe", "apply", "delete", "scale", "expose", "patch", "podio", "kubeconfig_cmd",
                "version", "lab", "pki", "auth", "ui", "netpol",
                "exercise", "scenario", "restart")  # the lab kit (kubelab/lab/kit)


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The flags kubectl accepts anywhere. On subcommands their default is SUPPRESS so a
    value given before the verb is not reset by the subcommand's parser."""
    default = argparse.SUPPRESS if suppress else None
    have = set(parser._option_string_actions)  # flags a verb module already defined win
    flags = [
        (("--kubeconfig",), dict(default=default, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")),
        (("--server", "-s"), dict(default=default, help="API server URL, e.g. http://127.0.0.1:6443")),
        (("--context",), dict(default=default, help="kubeconfig context to use")),
        (("-n", "--namespace"), dict(default=default, help="namespace (default: the context's, else 'default')")),
        (("-A", "--all-namespaces"), dict(action="store_true", default=argparse.SUPPRESS if suppress else False,
                                           help="across all namespaces")),
    ]
    group = parser.add_argument_group("global options")
    for names, kw in flags:
        names = tuple(n for n in names if n not in have)
        if names:
            group.add_argument(*names, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelab", description="Drive a kubelab cluster (kubectl's verbs) and the lab.",
        epilog="The real kubectl works too: `kubelab kubeconfig` writes a kubeconfig for it.")
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERB_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    for p in _nested(parser):
        _global_flags(p, suppress=True)
    return parser


def _nested(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand parser under `parser`, at any depth (`create deployment`), once."""
    out: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in dict.fromkeys(action.choices.values()):
                if p not in out:
                    out.append(p)
                    out.extend(x for x in _nested(p) if x not in out)
    return out


async def _run(args: argparse.Namespace) -> int:
    ctx = Context(args)
    try:
        code = await args.func(ctx)
        return 1 if ctx.failed and not code else int(code or 0)
    except CliError as e:
        sys.stderr.write(e.line() + "\n")
        return e.code
    except ApiError as e:
        sys.stderr.write(api_error_line(e) + "\n")
        return 1
    except BrokenPipeError:
        raise  # the reader went away (`| head`): not a connection problem
    except (httpx.TransportError, OSError) as e:
        if isinstance(e, OSError) and not isinstance(e, ConnectionError):
            sys.stderr.write(f"error: {e}\n")
            return 1
        server = ctx._conn.server if ctx._conn else "the server"
        sys.stderr.write(connection_error_line(e, server) + "\n")
        return 1
    finally:
        try:
            await ctx.aclose()
        except Exception:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (argparse's 2): argparse already printed
        code = int(e.code or 0)
        return USAGE_ERROR if code == 2 else code
    if not getattr(args, "verb", None):
        parser.print_help()
        return 0
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubelab get ... | head`: stop quietly, like kubectl
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
