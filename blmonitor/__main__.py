"""Entry point of the `blmonitor` command and of `python -m blmonitor`."""

import os
import signal
import sys


def main() -> None:
    command = sys.argv[1:2]
    if command == ["run"]:
        # Before the slow imports: a reload asked for while the daemon starts (systemctl
        # reload right after start) must not kill it; serve() installs the real handlers.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from blmonitor.cli import main as cli

    try:
        cli()
    except SystemExit as done:
        if command != ["check"]:
            raise
        # A big scan leaves ~10^6 objects; freeing them one by one at interpreter exit took
        # half a second of a three-second run. `check` holds no file, socket or database
        # open by now: flush what it wrote and leave without the teardown.
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
