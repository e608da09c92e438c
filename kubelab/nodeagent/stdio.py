"""The node agent's end of a container's stdin and terminal (`stdin: true`, `tty: true`), which
`kubectl attach` and `kubectl run -it` talk to.

Why the agent holds it: a container normally writes straight into its log file and reads
/dev/null, so no agent is needed for its I/O and a restarted agent re-adopts it. A container
with `stdin` needs someone holding the other end of its stdin (a pipe) or of its terminal (a
pty master): that is this object, one per container attempt.

Invariants:
- with `tty`, everything the container prints goes through the master: `pump` appends it to
  the attempt's log file (so `kubectl logs` shows it) and hands a copy to each attached
  session's queue; a session that falls QUEUE_CHUNKS behind loses its copy, never the log;
- without `tty`, stdout/stderr still go straight to the log file (attach follows it);
- `eof()` is idempotent: with `stdinOnce` the first attach session's end closes stdin for good
  (a pipe's write end is closed; on a terminal ^D is sent, as a user would);
- runtime only: an agent restart loses it (the container then sees EOF/hang-up), documented.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios

QUEUE_CHUNKS = 256


class Stdio:
    def __init__(self, *, tty: bool, stdin: bool, stdin_once: bool, log_file: str) -> None:
        self.tty = tty
        self.stdin = stdin
        self.stdin_once = stdin_once
        self.master = self.stdin_w = -1
        self.child_stdin = self.child_out = -1
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        self.log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.subscribers: set[asyncio.Queue] = set()
        self.closed = False
        self.done = asyncio.Event()
        if tty:
            self.master, slave = pty.openpty()
            os.set_blocking(self.master, False)
            self.child_stdin = self.child_out = slave
        elif stdin:
            r, self.stdin_w = os.pipe()
            self.child_stdin = r
        if not tty:
            self.done.set()   # no terminal: the output lives in the log file alone

    # ---- the child's side (containers.start) --------------------------------------------

    def command_prefix(self) -> list[str]:
        """Run before the container's command, inside it: with a terminal, the command starts
        a session whose controlling terminal is the pty (job control, ^C), as PID 1 of the
        container's PID namespace: a shell then never meets a process group it cannot see."""
        return ["setsid", "-c"] if self.tty else []

    def popen_kwargs(self) -> dict:
        """stdin/stdout/stderr for subprocess.Popen."""
        kw: dict = {"stdin": self.child_stdin if self.child_stdin >= 0 else None}
        if self.tty:
            kw.update(stdout=self.child_out, stderr=self.child_out)
        return kw

    def started(self) -> None:
        """After Popen: the child holds its ends; ours are closed (EOF/EIO then means it ended)."""
        for fd in {self.child_stdin, self.child_out} - {-1}:
            os.close(fd)
        self.child_stdin = self.child_out = -1
        if self.tty:
            asyncio.get_running_loop().add_reader(self.master, self._readable)

    # ---- the agent's side -----------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""           # EIO: every slave end is closed, the container is gone
        if not data:
            self._finish()
            return
        try:
            os.write(self.log_fd, data)
        except OSError:
            pass
        for q in list(self.subscribers):
            if q.qsize() >= QUEUE_CHUNKS:
                continue
            q.put_nowait(data)

    def _finish(self) -> None:
        if self.master >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self.master)
            except (RuntimeError, ValueError):
                pass
        for q in list(self.subscribers):
            q.put_nowait(None)
        self.done.set()

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        if self.done.is_set():
            q.put_nowait(None)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)

    def write(self, data: bytes) -> None:
        fd = self.master if self.tty else self.stdin_w
        if fd < 0 or not self.stdin:
            return
        try:
            while data:
                try:
                    n = os.write(fd, data)
                except BlockingIOError:
                    break    # the container does not read: drop rather than block the agent
                data = data[n:]
        except OSError:
            pass

    def eof(self) -> None:
        if self.tty:
            self.write(b"\x04")
        elif self.stdin_w >= 0:
            os.close(self.stdin_w)
            self.stdin_w = -1

    def resize(self, width: int, height: int) -> None:
        if self.master >= 0:
            try:
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            except OSError:
                pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._finish()
        for fd in (self.master, self.stdin_w, self.child_stdin, self.child_out, self.log_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.stdin_w = self.child_stdin = self.child_out = self.log_fd = -1

