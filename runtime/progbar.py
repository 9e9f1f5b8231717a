"""The Keras progress line: ` 750/750 ━━━━━━━━━━━━━━━━━━━━ 1s 863us/step - accuracy: 0.8425 - loss: 0.5733`."""
import os
import sys
import time


def _fmt_value(v):
    v = float(v)
    return f"{v:.4e}" if v != 0 and abs(v) < 1e-3 else f"{v:.4f}"


def _fmt_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _fmt_per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def dynamic_display():
    return (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()) or "ipykernel" in sys.modules or \
        os.environ.get("FNCOMPILER_PROGBAR") == "dynamic"


class Progbar:
    """Prints progress for `target` steps; `verbose=1` a live bar, `verbose=2` one line at the end."""

    def __init__(self, target, verbose=1, width=20, interval=0.1):
        self.target, self.verbose, self.width, self.interval = target, verbose, width, interval
        self.start = time.perf_counter()
        self._last = 0.0
        self.dynamic = dynamic_display()

    def wants_update(self, current, finalize=False):
        """True when update() would print now (so the caller only then reads metric values from the device)."""
        if self.verbose != 1 or not self.dynamic:
            return finalize
        now = time.perf_counter()
        return finalize or now - self._last >= self.interval

    def update(self, current, values=(), finalize=False):
        if self.verbose == 0:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        per_step = elapsed / max(current, 1)
        metrics = "".join(f" - {k}: {_fmt_value(v)}" for k, v in values)
        if self.verbose == 2:
            if finalize:
                sys.stdout.write(f"{current}/{self.target} - {_fmt_time(elapsed)} - {_fmt_per_step(per_step)}"
                                 f"{metrics}\n")
                sys.stdout.flush()
            return
        if not self.dynamic and not finalize:
            return
        self._last = now
        target = self.target if self.target else current
        digits = len(str(target))
        filled = int(self.width * current / target) if target else self.width
        bar = "━" * filled + "─" * (self.width - filled) if filled < self.width else "━" * self.width
        if finalize:
            timing = f"{_fmt_time(elapsed)} {_fmt_per_step(per_step)}"
        else:
            eta = per_step * (target - current) if target else 0
            timing = f"{_fmt_time(eta)} {_fmt_per_step(per_step)}"
        line = f"{current:>{digits}}/{target} {bar} {timing}{metrics}"
        prefix = "\r" if self.dynamic else ""
        sys.stdout.write(prefix + line + ("\n" if finalize else ""))
        sys.stdout.flush()
