"""A progress line for long management commands (seed_demo, media_gc)."""

import time

BAR_WIDTH = 20
LABEL_WIDTH = 12


class Progress:
    """``users       [##########----------] 21/42``: rewritten in place with ``\\r`` on a
    terminal, printed once when the phase ends otherwise (logs, CI, ``make``)."""

    def __init__(self, out, label: str, total: int, *, tty: bool, enabled: bool = True):
        self.out, self.label, self.total, self.tty, self.enabled = out, label, total, tty, enabled
        self.count = 0
        self.started = time.monotonic()
        self._draw()

    def _line(self) -> str:
        filled = BAR_WIDTH if not self.total else BAR_WIDTH * self.count // self.total
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{self.label:<{LABEL_WIDTH}}[{bar}] {self.count}/{self.total}"

    def _draw(self) -> None:
        if self.enabled and self.tty:
            self.out.write("\r" + self._line(), ending="")
            self.out.flush()

    def step(self) -> None:
        self.count += 1
        self._draw()

    def done(self, note: str = "") -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        line = self._line() + f"  {elapsed:.1f} s" + (f", {note}" if note else "")
        self.out.write(("\r" if self.tty else "") + line)
        self.out.flush()
