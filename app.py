"""KedaSMS Console — the Streamlit server (``st.App``) and the page navigation, in one file.

``streamlit run app.py`` finds the ``app = st.App(...)`` assignment, imports this module
under uvicorn (``__name__ == "app"``: the server with the callback receiver as an extra
route) and then runs this same file as the script of every page view
(``__name__ == "__main__"``: the navigation). ``AppTest.from_file("app.py")`` runs the
script branch only.
"""

from __future__ import annotations

import streamlit as st

if __name__ != "__main__":
    import asyncio
    import logging
    import os
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager
    from typing import Any

    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
    from streamlit.runtime.pages_manager import PagesManager

    from console import runtime as _runtime
    from kedacore.settings import load_settings

    log = logging.getLogger("console")

    # A pages/ folder beside the entry script puts Streamlit in its old multipage mode until
    # a run of this script calls st.navigation (which clears this flag). A first visit that
    # goes straight to /status would then run pages/status.py alone, without the
    # navigation or the page config. Clear it now, as st.navigation would.
    PagesManager.uses_pages_directory = False

    _started: list[_runtime.Runtime] = []  # the runtime, once up: callbacks skip the lookup

    def _current() -> _runtime.Runtime:
        return _runtime.runtime(load_settings(st.secrets, os.environ))

    async def _receive(request: Request) -> Response:
        """``/hooks/keda/{token}``: the runtime's receiver (started on first use if need be)."""
        if not _started:
            try:
                _started.append(await asyncio.to_thread(_current))
            except Exception:
                log.exception("callback refused: the console runtime could not start")
                return JSONResponse(
                    {"ok": False, "error": "unavailable", "message": "The console is not ready."},
                    status_code=503,
                )
        return await _started[0].receive(request)

    @asynccontextmanager
    async def _lifespan(_app: Any) -> AsyncIterator[None]:
        try:  # start the sandbox with the server, so that it runs before any page is opened
            _started.append(await asyncio.to_thread(_current))
        except Exception as exc:  # the pages show the reason with what to do
            log.error("the console runtime did not start: %s", exc)
        yield
        await asyncio.to_thread(_runtime.reset)  # stop the sandbox gateway cleanly

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = st.App(
        "app.py",
        routes=[Route("/hooks/keda/{token}", _receive, methods=methods)],
        lifespan=_lifespan,
    )
else:
    from console.navigation import run

    run()
