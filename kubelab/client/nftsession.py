"""A long-lived libnftables context, in a network namespace, for the node components that
program nftables on every change (the NetworkPolicy agent; the proxy may follow).

Why it exists: `ip netns exec NS nft -f -` per transaction costs a fork+exec of `ip` (which
also unshares a mount namespace and remounts /sys) and of `nft`, plus nft's start-up, before
the first netlink message is sent. On a loaded 2-core node that was most of "policy created →
enforced" (bench/bench_netpol.py). libnftables is the library the `nft` binary itself is a thin
shell around (same parser, same atomic netlink batch, same error text), so running the same
text through it in-process changes nothing a student sees, only the spawn cost.

Invariants:
- One worker thread per session owns the `nft_ctx`; every call runs on that thread, so the
  (not thread-safe) context is never shared, and the thread's network namespace is set once,
  with setns(2), before the context opens its netlink socket. The rest of the process stays in
  its own namespace (setns of CLONE_NEWNET is per thread).
- A transaction is still one `nft -f`-style buffer: atomic, all or nothing.
- When libnftables cannot be loaded (not installed), `available()` is False and callers keep
  spawning `nft`; nothing else changes.

The Debian binding (python3-nftables) is not importable from a virtualenv, and its ctypes
surface is five functions; they are declared here.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import threading

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_lib: ctypes.CDLL | None = None        # libnftables, loaded once (None: not yet tried or absent)
_lib_error: str | None = None           # why it could not be loaded
_lib_lock = threading.Lock()
_libc = ctypes.CDLL(None, use_errno=True)


def _load() -> ctypes.CDLL | None:
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("nftables") or "libnftables.so.1")
        except OSError as e:
            _lib_error = str(e)
            return None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        _lib = lib
        return lib


def available() -> bool:
    """Whether libnftables can be used in this process."""
    return _load() is not None


class NftSessionError(RuntimeError):
    """The session could not start (no libnftables, no such network namespace)."""


class NftSession:
    """`run(text)` ≡ `ip netns exec NETNS nft -f -` with `text` on stdin, without the spawns."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns                    # named namespace (/run/netns/NAME); None: the caller's own
        self._ctx: int | None = None          # nft_ctx*, only ever touched on the worker thread
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nft")
        self.calls = 0                        # transactions run (for tests and logs)

    def _open(self) -> None:
        lib = _load()
        if lib is None:
            raise NftSessionError(f"libnftables unavailable: {_lib_error}")
        if self.netns:
            try:
                fd = os.open(os.path.join(NETNS_DIR, self.netns), os.O_RDONLY)
            except OSError as e:
                raise NftSessionError(f"network namespace {self.netns}: {e.strerror}") from None
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise NftSessionError(f"setns {self.netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise NftSessionError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        self._ctx = ctx

    def _run(self, text: str) -> tuple[int, str, str]:
        if self._ctx is None:
            self._open()
        lib = _lib
        assert lib is not None and self._ctx is not None
        rc = lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
        out = (lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        self.calls += 1
        return (0 if rc == 0 else 1), out, err

    def run(self, text: str) -> tuple[int, str, str]:
        """(returncode, stdout, stderr) of the buffer, as `nft -f -` would report them.
        Raises NftSessionError when the session cannot start."""
        return self._pool.submit(self._run, text).result()

    def close(self) -> None:
        def free() -> None:
            if self._ctx is not None and _lib is not None:
                _lib.nft_ctx_free(self._ctx)
                self._ctx = None
        try:
            self._pool.submit(free).result()
        except RuntimeError:  # already shut down
            pass
        self._pool.shutdown(wait=True)
