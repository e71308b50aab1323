"""The KedaSMS API client: :class:`KedaClient`, :class:`AsyncKedaClient`, their errors and results.

One module per concern: ``_http`` builds every request and reads every answer (shared by both
clients), ``_aio`` is the asyncio transport over aiohttp, ``_endpoints`` the API's calls,
``errors`` one class per meaning, ``types`` the typed results. ``kedacore`` re-exports the
public names.
"""

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.client import KedaClient

__all__ = ["AsyncKedaClient", "KedaClient"]
