"""`llm-studio`: open the studio (the last workspace, or the demo workspace on first start).

    llm-studio [WORKSPACE] [--theme light|dark]
    llm-studio --screenshot PATH [--panel main|training|runs|config|data|generate|attention] [--theme dark]
               [--size WxH]   (default: the window's default size, 1360x860)

--screenshot renders the main window offscreen, with a finished demo run loaded, to a PNG and exits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_T0 = time.perf_counter()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="llm-studio", description="LLM Training Studio")
    p.add_argument("workspace", nargs="?", help="workspace folder to open")
    p.add_argument("--theme", choices=("light", "dark"), help="colour theme (default: last used)")
    p.add_argument("--screenshot", metavar="PATH",
                   help="render the window to PATH (PNG) and exit; first trains, in the workspace given (else the "
                        "demo's), the demo run and, for main/training/runs, a fork of it, where not yet trained")
    p.add_argument("--panel", default="main",
                   choices=("main", "training", "runs", "config", "data", "generate", "attention"),
                   help="what --screenshot renders")
    p.add_argument("--size", default=None, type=_size, help="window size for --screenshot, WxH "
                   "(default: the window's default size)")
    p.add_argument("--quit-after-show", action="store_true", help=argparse.SUPPRESS)  # cold-start benchmark
    return p.parse_args(argv)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x800") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"{text!r} is too small (at least 200x200)")
    return width, height


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return screenshot(args)
    from studio.display import display_problem

    problem = display_problem()
    if problem:  # Qt would abort (exit 134) with a message naming one library at best
        print(f"llm-studio: {problem}", file=sys.stderr)
        return 2
    from studio.app import create_application
    from studio.main_window import MainWindow

    app = create_application(theme=args.theme)
    window = MainWindow()
    if args.quit_after_show:
        from PySide6.QtCore import QTimer

        def report() -> None:
            print(f"first window shown after {time.perf_counter() - _T0:.3f} s (at {time.time():.3f})", flush=True)
            app.quit()

        QTimer.singleShot(0, report)
    window.show()
    window.open_workspace(_initial_workspace(args, window.settings))
    close_on_signals(app, window)
    return app.exec()


def close_on_signals(app, window) -> None:
    """SIGTERM and SIGHUP (a desktop session logging out, `kill`) close the window as its close button would,
    leaving training runs to go on (the studio follows them again when their workspace opens): a pending
    config edit, the window's layout and the settings are saved instead of lost with the process."""
    import signal

    from PySide6.QtCore import QTimer

    def close(_signum, _frame) -> None:
        window.close_policy = "leave"
        window.close()
        app.quit()

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), close)
    wake = QTimer(window)  # Python runs signal handlers between bytecodes: let it in every 200 ms
    wake.timeout.connect(lambda: None)
    wake.start(200)


def _initial_workspace(args: argparse.Namespace, settings) -> str:
    from studio import demo

    if args.workspace:
        return os.path.abspath(args.workspace)
    recent = settings.recent_workspaces()
    return recent[0] if recent else demo.ensure_demo_workspace().root


def screenshot(args: argparse.Namespace) -> int:
    from studio import demo
    from studio.app import create_application
    from studio.main_window import MainWindow

    root = os.path.abspath(args.workspace) if args.workspace else demo.default_demo_root()
    run = demo.build_demo_fork(root) if args.panel in ("main", "training", "runs") else \
        demo.build_finished_demo(root)
    app = create_application(theme=args.theme or "light")
    window = MainWindow()
    window.close_policy = "leave"
    from studio.window_state import DEFAULT_SIZE

    window.resize(*(args.size or DEFAULT_SIZE))
    window.open_workspace(root)
    window.ensure_panels()
    window.select_run(run.dir)
    window.show_tab({"config": "config", "data": "data", "generate": "generate",
                     "attention": "attention"}.get(args.panel, "training"))
    if args.panel == "attention":  # the run's last training snapshot rather than an empty page
        window.attention.source.setCurrentIndex(1)
    window.show()
    for _ in range(5):
        app.processEvents()
    window.training.plots.redraw()
    window.training.console.flush()
    app.processEvents()
    target = {"training": window.tabs, "runs": window.runs_panel}.get(args.panel, window)
    ok = target.grab().save(args.screenshot, "PNG")
    window.close()
    print(f"{'wrote' if ok else 'could not write'} {args.screenshot}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
