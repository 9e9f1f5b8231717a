"""Rendering DOT source in this process with the Graphviz library that the `pygraphviz` wheel bundles.

pygraphviz >= 2.0 ships wheels (Linux x86_64, macOS, Windows) that carry libgvc, the `dot` layout and the
cairo / pango renderers, so PNG, SVG and PDF need no system Graphviz. Graphviz writes its messages to the C
`stderr`; they are captured while rendering: errors become the `RenderError`'s message, warnings go on to
Python's `sys.stderr`, except the bundled fontconfig's complaints about the system's newer configuration
files (it still finds the fonts; the lines are noise on every first plot).
"""
import os
import sys
import tempfile
import threading

__all__ = ["RenderError", "have_pygraphviz", "render_pygraphviz"]

_LOCK = threading.Lock()
_NOISE = ("Fontconfig warning", "Fontconfig error")


class RenderError(RuntimeError):
    """Graphviz could not lay out or render the DOT source; the message is Graphviz's own."""


def have_pygraphviz():
    try:
        import pygraphviz  # noqa: F401
    except ImportError:
        return False
    return True


def render_pygraphviz(source, fmt, prog="dot"):
    """The bytes of DOT `source` laid out by `prog` and rendered to `fmt` ("png", "svg", "pdf", ...)."""
    import pygraphviz
    with _LOCK:
        messages = []
        try:
            with _captured_c_stderr(messages):
                graph = pygraphviz.AGraph(string=source)
                data = graph.draw(format=fmt, prog=prog)
        except Exception as exc:  # pygraphviz: DotError, or a TypeError/ValueError for an unknown format
            detail = " ".join(m for m in messages if m.startswith(("Error", "Format"))) or str(exc)
            raise RenderError(detail) from exc
        finally:
            for line in messages:
                if not line.startswith(_NOISE) and not line.startswith("Error"):
                    print(line, file=sys.stderr)
    if not data:
        raise RenderError(" ".join(messages) or f"Graphviz produced no {fmt} output")
    return data


class _captured_c_stderr:
    """Redirects file descriptor 2 to a temporary file; on exit appends its lines to `lines`."""

    def __init__(self, lines):
        self.lines = lines

    def __enter__(self):
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        self.tmp = tempfile.TemporaryFile()
        try:
            self.saved = os.dup(2)
        except OSError:  # no fd 2 (e.g. a GUI process): nothing to capture
            self.saved = None
            return self
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        self.tmp.seek(0)
        text = self.tmp.read().decode("utf-8", "replace")
        self.tmp.close()
        self.lines.extend(line for line in text.splitlines() if line.strip())
        return False
