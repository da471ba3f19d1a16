"""boto3 clients, created once per execution environment and reused by every invocation.

Every client uses botocore's ``standard`` retry mode (exponential backoff with jitter on
throttling and transient errors) and short timeouts, so a slow dependency fails an
invocation instead of hanging it until the Lambda timeout.

The session's data loader skips botocore's listing of every service on disk before it loads
a model (see :class:`Loader`): about 15 ms of every cold start, a tenth of the authorizer's.
The clients are the same (same models, endpoints, credentials chain and retries).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader as _BotocoreLoader

_session: boto3.session.Session | None = None


class _ServiceNames(Collection[str]):
    """What :meth:`Loader.list_available_services` answers: membership without the full scan."""

    def __init__(self, known: Callable[[str], bool], scan: Callable[[], list[str]]) -> None:
        self._known, self._scan = known, scan

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._known(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._scan())

    def __len__(self) -> int:
        return len(self._scan())


class Loader(_BotocoreLoader):
    """botocore's data loader, except that "is this service known?" looks at that service only.

    Before loading a model botocore checks ``service_name in list_available_services(type)``,
    which lists every service directory on the search path (about 420 ``listdir`` and 2,500
    ``stat`` calls, twice per client: ~15 ms of a cold start). Here the check looks only at the
    requested service's directories, by the same rule (some API version holds a ``type`` file);
    iterating the answer (an unknown service's error message, ``get_available_services``) still
    lists them all.
    """

    def list_available_services(self, type_name: str) -> Collection[str]:
        """Services with a ``type_name`` file: ``in`` checks one service, iterating lists all."""

        def known(service: str) -> bool:
            try:
                return bool(self.list_api_versions(service, type_name))
            except DataNotFoundError:
                return False

        return _ServiceNames(known, lambda: super(Loader, self).list_available_services(type_name))


def _loader(owner: botocore.session.Session) -> Loader:
    """:class:`Loader` with botocore's search path (``AWS_DATA_PATH`` first), as ``botocore.loaders.create_loader``."""
    extra = owner.get_config_variable("data_path")
    if extra is None:
        return Loader()
    return Loader(extra_search_paths=[os.path.expanduser(os.path.expandvars(p)) for p in extra.split(os.pathsep)])


def session() -> boto3.session.Session:
    """One boto3 session per environment (service models are loaded once and shared), with :class:`Loader`."""
    global _session
    if _session is None:
        core = botocore.session.Session()
        core.lazy_register_component("data_loader", lambda: _loader(core))
        _session = boto3.session.Session(botocore_session=core)
    return _session


def client(
    service: str,
    *,
    region: str | None = None,
    max_attempts: int = 4,
    connect_timeout: float = 2.0,
    read_timeout: float = 5.0,
) -> Any:
    """A client for ``service`` in ``region`` (default: the function's own region)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )
    return session().client(service, region_name=region, config=config)
