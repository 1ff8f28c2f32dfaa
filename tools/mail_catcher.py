"""Development only: an SMTP server on loopback that keeps every e-mail it is given as a file.

`make run` starts it and points the e-mail gateway at it, so a secure link sent from the console can be
opened from the console's Caught e-mail page (services/caught_mail.py reads the folder) without an SMTP
server of one's own. Nothing leaves the machine. Production refuses CAUGHT_MAIL_DIR (config.py).

    python -m tools.mail_catcher --port 1025 --folder instance/caught-mail
"""

import argparse
import os
import signal
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller


class Keeper:
    """aiosmtpd handler: writes each message whole into the folder, one .eml file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}"
        partial.write_bytes(envelope.content)
        os.replace(partial, self.folder / name)  # the page never reads half a message
        return "250 Message kept"


def catcher(folder: Path, port: int) -> Controller:
    """A started-to-be SMTP server on 127.0.0.1:`port` keeping messages in `folder` (made 0700)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Controller(Keeper(folder), hostname="127.0.0.1", port=port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, default=Path("instance/caught-mail"))
    options = parser.parse_args(argv)
    server = catcher(options.folder, options.port)
    server.start()
    print(f"Catching e-mail on 127.0.0.1:{options.port} into {options.folder}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop() or os._exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
