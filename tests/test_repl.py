"""ptpython as the manhole configures it: what it must not do to the host."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Never
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyPress

from manhole_ssh._compat.ptpython import signatures
from manhole_ssh.session.repl import Repl


class Probe:
    def __init__(self) -> None:
        self.touched = 0

    @property
    def costly(self) -> list[int]:
        self.touched += 1
        return [1, 2, 3]

    def __getitem__(self, key: object) -> list[int]:
        self.touched += 1
        return [1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_completion_and_signatures_do_not_run_host_code() -> None:
    probe = Probe()
    namespace = {"probe": probe}
    repl = Repl(namespace, _Terminal(), term="xterm", columns=80, rows=24)
    try:
        completer = repl.python._completer
        for text in ("probe.costly.", "probe['x'].", "probe.costly[0]."):
            event = CompleteEvent(completion_requested=True)
            list(completer.get_completions(Document(text), event))
            signatures(Document(text + "append("), namespace, namespace)  # as the REPL asks
        names = [c.text for c in completer.get_completions(Document("probe.c"), CompleteEvent())]
        assert "costly" in names  # completion works, from names alone
        assert probe.touched == 0
    finally:
        repl.close()


def test_host_affecting_keys_stay_off() -> None:
    """Ctrl-Z would stop the host process; F4's editor and the pager would use its terminal."""
    repl = Repl({}, _Terminal(), term="xterm", columns=80, rows=24)
    try:
        python = repl.python
        python.enable_system_bindings = True  # what the F2 menu would do
        python.enable_open_in_editor = True
        python.enable_pager = True
        assert not (python.enable_system_bindings or python.enable_open_in_editor)
        assert not python.enable_pager
    finally:
        repl.close()


def test_completion_while_typing_starts_after_names_not_numbers() -> None:
    repl = Repl({}, _Terminal(), term="xterm", columns=80, rows=24)
    try:
        wants_completion = repl.python.completer._complete_python_while_typing
        for text in ("pri", "state.", "x.ca", "f(a", "items[0]."):
            assert wants_completion(Document(text)), text
        for text in ("1+41", "3.", "x = 12", "'abc'"):
            assert not wants_completion(Document(text)), text
    finally:
        repl.close()


def test_sessions_share_key_bindings_and_styles_but_not_their_state() -> None:
    """prompt_toolkit's default bindings and ptpython's styles are made once for every
    session (thousands of objects each, otherwise); what a session types and its key
    state (vi mode here) stay its own."""

    async def two_sessions() -> tuple[str, str]:
        first = Repl({}, _Terminal(), term="xterm", columns=80, rows=24)
        second = Repl({}, _Terminal(), term="xterm", columns=80, rows=24)
        assert first.python.app._default_bindings is second.python.app._default_bindings
        assert first.python._current_style is second.python._current_style
        first.python.vi_mode = True
        reading = [asyncio.ensure_future(repl.read()) for repl in (first, second)]
        for repl, typed in ((first, "ix\x1bhiab"), (second, "ix\x1bhiab")):
            app = repl.python.app
            while not app.is_running:
                await asyncio.sleep(0.001)
            keys: list[KeyPress] = []
            Vt100Parser(keys.append).feed(typed)

            def type_keys(app: Any = app, keys: list[KeyPress] = keys) -> None:
                app.key_processor.feed_multiple(keys)
                app.key_processor.process_keys()

            app.context.copy().run(type_keys)
        texts = first.python.default_buffer.text, second.python.default_buffer.text
        for repl in (first, second):
            repl.close()
        await asyncio.wait_for(asyncio.gather(*reading), 10)
        return texts

    # vi (starting in insert mode): "ix", Escape (the cursor steps back onto the x), h
    # (onto the i), then "ab" inserted there; in emacs, Escape-h inserts the h.
    assert asyncio.run(two_sessions()) == ("abix", "ixhiab")


def test_sessions_draw_with_one_shared_merge_of_their_style() -> None:
    """Each session draws with what prompt_toolkit would merge for it (its default UI
    style, then the REPL's), from a merge shared by the sessions with the same style; a
    session that picks another colour scheme (F2) draws with its own choice alone."""
    first = Repl({}, _Terminal(), term="xterm", columns=80, rows=24)
    second = Repl({}, _Terminal(), term="xterm", columns=80, rows=24)
    styles = ["class:pygments.keyword", "class:prompt", "class:status-toolbar", "bold #ff0000"]

    def drawn(repl: Repl) -> list[object]:
        style = repl.python.app.renderer.style
        assert style is repl.python.app._merged_style
        return [style.get_attrs_for_style_str(text) for text in styles]

    def merged_by_prompt_toolkit(repl: Repl) -> list[object]:
        merge = repl.python.app._create_merged_style(Never())
        return [merge.get_attrs_for_style_str(text) for text in styles]

    try:
        assert drawn(first) == drawn(second) == merged_by_prompt_toolkit(first)
        shared = [repl.python.app.renderer.style._merged() for repl in (first, second)]  # type: ignore[attr-defined]
        assert shared[0] is shared[1]
        first_rules = first.python.app.renderer.style.style_rules
        assert first_rules == second.python.app.renderer.style.style_rules
        hash_before = second.python.app.renderer.style.invalidation_hash()
        first.python.use_code_colorscheme("monokai")
        assert drawn(first) == merged_by_prompt_toolkit(first) != drawn(second)
        assert drawn(second) == merged_by_prompt_toolkit(second)
        assert second.python.app.renderer.style.invalidation_hash() == hash_before
        assert first.python.app.renderer.style.invalidation_hash() != hash_before
    finally:
        first.close()
        second.close()


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.001)


def test_a_prompt_is_drawn_whole_before_the_terminal_says_where_it_is() -> None:
    """The renderer asks where each prompt starts and draws without waiting; ptpython
    leaves out its status bar until it knows the room below. The prompt is drawn whole at
    once (status bar included); an answer that gives it no more room than it took draws
    nothing more, and one with more room (the top row) draws it again, taller."""

    async def scenario() -> tuple[bool, bool, bool, int, int]:
        terminal = _Terminal()
        repl = Repl({}, terminal, term="xterm", columns=80, rows=24)
        repl.probe_cursor_position_reports()
        repl.feed("\x1b[3;1R")  # the client answers such requests
        reading = asyncio.ensure_future(repl.read())
        app = repl.python.app
        renderer = app.renderer
        await _until(lambda: renderer.waiting_for_cpr and app.render_counter > 0, "a prompt")
        whole_at_once = "[F4]" in terminal.getvalue()  # ptpython's status bar
        drawn = app.render_counter
        height = renderer._last_screen.height
        repl.feed(f"\x1b[{24 - height + 1};1R")  # exactly the room it took
        await _until(lambda: not renderer.waiting_for_cpr, "the answer taken")
        redrawn = app.invalidated or app.render_counter != drawn

        before_resize = len(terminal.getvalue())
        repl.resize(80, 24)  # erases, asks again and draws
        await _until(lambda: renderer.waiting_for_cpr, "the request after a resize")
        whole_again = "[F4]" in terminal.getvalue()[before_resize:]
        drawn = app.render_counter
        repl.feed("\x1b[1;1R")  # the top row: the whole screen below
        await _until(lambda: app.render_counter > drawn, "a drawing with more room")
        taller = renderer._last_screen.height
        repl.close()
        await asyncio.wait_for(reading, 10)
        return whole_at_once, redrawn, whole_again, height, taller

    whole_at_once, redrawn, whole_again, height, taller = asyncio.run(scenario())
    assert whole_at_once and whole_again
    assert not redrawn
    assert taller > height
