"""Entry point of the `blmonitor` command and of `python -m blmonitor`."""

import signal
import sys


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        # Before the slow imports: a reload asked for while the daemon starts (systemctl
        # reload right after start) must not kill it; serve() installs the real handlers.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from .cli import main as cli

    cli()


if __name__ == "__main__":
    main()
