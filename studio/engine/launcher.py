"""A tiny, Qt-free process that runs one engine command detached from the GUI.

    python studio/engine/launcher.py RUN_DIR -- <engine argv...>   (stdlib + core.layout, no Qt)

Why: a training run must be able to outlive the studio ("leave it running" on close) and be followed
again later. So the GUI never owns the engine's pipes: this launcher starts in its own session, sends
the engine's stdout to RUN_DIR/engine.out and stderr to RUN_DIR/engine.log, records the engine's pid in
RUN_DIR/launcher.json together with what identifies it and the launcher beyond their pids (start time and
command line, studio.workspace.proc: a pid alone may be reused by another process), forwards SIGTERM (graceful stop) to it, and writes RUN_DIR/exit.json with the
exit code when it ends. The studio follows a run it just started and a run it finds running on reopen
in exactly the same way: by tailing metrics.jsonl and engine.log (studio.engine.training).

From source it runs as a script (no PYTHONPATH needed): it puts the project root on sys.path itself so
that core.layout (stdlib only) gives it the file names and the atomic JSON writer. Frozen, the bundle's
`launch` subcommand imports it as a module and core is already importable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if not __package__:  # run as a script: make the project's packages importable
    sys.path.insert(0, ROOT)

from core.layout import ENGINE_LOG, ENGINE_OUT, EXIT_JSON, LAUNCHER_JSON, atomic_write_json  # noqa: E402
from studio.workspace.proc import fingerprint  # noqa: E402  (stdlib only, no Qt)


def run(run_dir: str, argv: list[str]) -> int:
    if hasattr(os, "setsid"):
        try:
            os.setsid()  # no SIGINT/SIGHUP from the studio's terminal or session
        except OSError:
            pass
    started = time.time()
    exit_path = os.path.join(run_dir, EXIT_JSON)
    try:
        os.remove(exit_path)
    except OSError:
        pass
    with open(os.path.join(run_dir, ENGINE_OUT), "wb") as out, \
            open(os.path.join(run_dir, ENGINE_LOG), "ab") as err:
        err.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        err.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=run_dir,
                                     env=env)
        except OSError as exc:
            err.write(f"could not start the engine: {exc}\n".encode())
            atomic_write_json(exit_path, {"code": 127, "ended": time.time(), "started": started,
                                          "error": str(exc)})
            return 127
        # Popen returns once the child has exec'd, so its command line is the engine's, not ours.
        atomic_write_json(os.path.join(run_dir, LAUNCHER_JSON),
                          {"pid": child.pid, "launcher_pid": os.getpid(), "argv": argv, "started": started,
                           "pid_fingerprint": fingerprint(child.pid),
                           "launcher_fingerprint": fingerprint(os.getpid())})

        def forward(signum, _frame):
            try:
                child.send_signal(signum)
            except OSError:
                pass

        signal.signal(signal.SIGTERM, forward)
        if hasattr(signal, "SIGINT"):
            signal.signal(signal.SIGINT, forward)
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:
                continue
    atomic_write_json(exit_path, {"code": code, "ended": time.time(), "started": started})
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: launcher.py RUN_DIR -- ENGINE_ARGV...", file=sys.stderr)
        return 2
    return run(os.path.abspath(args[0]), args[2:])


if __name__ == "__main__":
    sys.exit(main())
