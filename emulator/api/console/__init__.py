"""The local console: HTML pages over the API server's own state, served by the API server at ``/``.

``app`` (routing, the token that guards every change, static files), ``views`` (the pages, read through the
server's own List*/Describe* operations and log streams), ``html`` (escaping, layout, tables, a Describe as
nested lists), ``charts`` (metric series from the logs as SVG), ``graph`` (a pipeline as an SVG graph),
``junit`` (the contract suite's JUnit XML, check by check). The script and stylesheet ship in ``static/``.
"""

from emulator.api.console.app import Console

__all__ = ["Console"]
