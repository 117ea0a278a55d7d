"""Result downloads only from where results live: public https hosts, checked at every hop, of the right kind.

Why it exists: a result URL comes from KIE's task record — or from whoever could reach the
callback route — and the bot fetches it from inside its own network and sends what it gets to
a user. Fetched blindly, a URL (or a redirect from a harmless-looking one) can name a loopback
"credentials" endpoint, a private service or the cloud's metadata address (169.254.169.254), and
its answer would reach a chat. So a download here:

* goes over https only, unless its host (``host`` or ``host:port``) is in the explicit
  allow-list (``DOWNLOAD_TRUSTED_HOSTS``: the demo's and the tests' fake KIE, never a wildcard);
* connects only to public addresses: the name is resolved by :class:`GuardedResolver`, which
  keeps only addresses that pass :func:`address_refusal` (loopback, private, CGNAT, ULA,
  link-local, unspecified, multicast, reserved are dropped), so the socket connects to the very
  address that was checked (no second lookup a rebinding DNS could answer differently); an IP
  literal in a URL is checked the same way before anything is sent;
* follows redirects itself, at most :data:`MAX_REDIRECTS`, each hop's URL checked by the same rules;
* accepts only a content type that fits the caller's ``kind`` (image/* for a photo, video/*,
  audio/*, anything but HTML for a document); ``application/octet-stream`` or no type only when
  the first bytes' magic number fits the kind; an HTML page is never a result;
* stays within the caller's byte bound and deadline.

A refusal is :class:`~kie.errors.DownloadRefused` (never retried); its message names the host at
most, never a path or a query, which may hold a secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from kie.envelope import retry_after_seconds
from kie.errors import BadResponse, DownloadRefused, Timeout, TooLarge, Transport, error_for_code

__all__ = [
    "KINDS",
    "MAX_REDIRECTS",
    "Downloader",
    "GuardedResolver",
    "TrustedHost",
    "address_refusal",
    "fits_kind",
    "parse_trusted_hosts",
    "read_limited",
    "type_verdict",
]

MAX_REDIRECTS = 5
KINDS = ("photo", "video", "audio", "document")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_TYPE_PREFIX = {"photo": "image/", "video": "video/", "audio": "audio/"}
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})  # S3 says binary/octet-stream
_HTML = frozenset({"text/html", "application/xhtml+xml"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True)
class TrustedHost:
    """An allow-list entry: ``host`` (lower case, no trailing dot) on any port, or only on ``port``."""

    host: str
    port: int | None = None

    def admits(self, host: str, port: int) -> bool:
        return self.host == _norm(host) and (self.port is None or self.port == port)


def parse_trusted_hosts(entries: Iterable[str]) -> tuple[TrustedHost, ...]:
    """``host`` / ``host:port`` / ``[v6]:port`` entries; ValueError for anything else (a path, a scheme, a user)."""
    hosts: list[TrustedHost] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            parts = urlsplit("//" + text)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError(f"not a host or host:port: {text!r}") from None
        if not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"not a host or host:port: {text!r}")
        hosts.append(TrustedHost(_norm(host), port))
    return tuple(hosts)


def _norm(host: str) -> str:
    return host.lower().rstrip(".")


def address_refusal(address: str) -> str | None:
    """Why a download may not connect to IP ``address`` ("loopback", "private", ...), or None when it is public."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour  # ::ffff:127.0.0.1 and 2002:7f00:1:: reach IPv4 addresses
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            why = address_refusal(str(embedded))
            if why is not None:
                return why
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),  # 169.254/16 (the metadata address), fe80::/10
        ("multicast", ip.is_multicast),
        ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),  # RFC 1918, fc00::/7 and the other special-purpose blocks
        ("not global", not ip.is_global),
    )
    for why, refused in checks:
        if refused:
            return why
    return None


class _RefusedAddress(OSError):
    """Every address a name resolved to was refused (an OSError, so aiohttp reports it as a DNS failure)."""

    def __init__(self, host: str, reasons: list[str]) -> None:
        super().__init__(f"{host} resolves only to refused addresses ({', '.join(sorted(set(reasons))) or 'none'})")
        self.reasons = ", ".join(sorted(set(reasons))) or "no address"
        self.host = host


class GuardedResolver(AbstractResolver):
    """A resolver that hands aiohttp only addresses a download may connect to (trusted hosts: all of them).

    Filtering here, not before the request, is what makes the check hold: the connector connects
    to exactly the addresses this returns.
    """

    def __init__(self, trusted: Iterable[TrustedHost] = (), inner: AbstractResolver | None = None) -> None:
        self.trusted = tuple(trusted)
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        if any(entry.admits(host, port) for entry in self.trusted):
            return results
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            why = address_refusal(result["host"])
            if why is None:
                kept.append(result)
            else:
                reasons.append(why)
        if not kept:
            raise _RefusedAddress(_norm(host), reasons)
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def type_verdict(kind: str, content_type: str) -> bool | None:
    """Can a ``content_type`` answer be a ``kind`` result: True, False, or None (untyped: the first bytes decide)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _HTML:
        return False
    if kind == "document":
        return True
    if media in _UNTYPED:
        return None
    return media.startswith(_TYPE_PREFIX[kind])


def fits_kind(kind: str, content_type: str, head: bytes) -> bool:
    """Whether an answer of ``content_type`` starting with ``head`` can be a ``kind`` result."""
    verdict = type_verdict(kind, content_type)
    return _magic_fits(kind, head) if verdict is None else verdict


def _magic_fits(kind: str, head: bytes) -> bool:
    riff = head[:4] == b"RIFF" and len(head) >= 12
    ftyp = head[4:8] == b"ftyp"
    if kind == "photo":
        return (head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a"))
                or (riff and head[8:12] == b"WEBP"))
    if kind == "video":
        return ftyp or head.startswith(b"\x1a\x45\xdf\xa3") or head[4:8] in (b"moov", b"mdat", b"wide")
    if kind == "audio":
        mpeg_frame = len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
        return (head.startswith((b"ID3", b"OggS", b"fLaC")) or mpeg_frame or ftyp
                or (riff and head[8:12] == b"WAVE"))
    return False


class Downloader:
    """One HTTP session whose connections go only where :func:`check_url` and the resolver allow.

    Separate from the API client's session: the key is never sent here, and KIE's own API (a
    trusted host in the demo, a public one in production) needs none of these rules.
    """

    def __init__(self, user_agent: str, trusted: Iterable[TrustedHost] = (),
                 resolver: AbstractResolver | None = None) -> None:
        self.user_agent = user_agent
        self.trusted = tuple(trusted)
        self._inner = resolver
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    async def close(self) -> None:
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        if session is not None:
            await session.close()
        if resolver is not None and self._inner is None:  # a resolver the caller gave is the caller's to close
            await resolver.close()

    def check_url(self, url: str) -> tuple[str, int]:
        """The host and port ``url`` may be fetched from; DownloadRefused for a scheme, user or IP literal
        the rules refuse (a name is checked when it resolves)."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise DownloadRefused("download URL is not a valid URL") from None
        if parts.scheme not in _DEFAULT_PORTS or not host:
            raise DownloadRefused("download URL must be an absolute https URL")
        port = port or _DEFAULT_PORTS[parts.scheme]
        where = _norm(host)
        if any(entry.admits(host, port) for entry in self.trusted):
            return where, port
        if parts.scheme != "https":
            raise DownloadRefused(f"download from {where}: plain http, and {where} is not a trusted host")
        if parts.username is not None or parts.password is not None:
            raise DownloadRefused(f"download from {where}: a URL with credentials is not a result")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return where, port  # a name: checked by the resolver, on the addresses the socket will use
        why = address_refusal(host)
        if why is not None:
            raise DownloadRefused(f"download from {where}: a {why} address")
        return where, port

    async def fetch(self, url: str, max_bytes: int, kind: str, deadline: float) -> bytes:
        """One try: the URL and each redirect checked, the body read within ``max_bytes`` by ``deadline``."""
        host, _ = self.check_url(url)
        session = self._open()
        redirected = False
        try:
            async with asyncio.timeout_at(deadline):
                for _ in range(MAX_REDIRECTS + 1):
                    async with session.get(url, allow_redirects=False) as response:
                        if response.status in _REDIRECTS:
                            location = response.headers.get("Location")
                            if not location:
                                raise BadResponse(f"download from {host}: a redirect without a Location",
                                                  http_status=response.status)
                            url, redirected = urljoin(url, location), True
                            try:
                                host = self.check_url(url)[0]
                            except DownloadRefused as exc:
                                raise DownloadRefused(f"redirect refused: {exc.message}") from None
                            continue
                        if not 200 <= response.status < 300:
                            raise error_for_code(response.status, f"download from {host}: HTTP {response.status}",
                                                 http_status=response.status,
                                                 retry_after=retry_after_seconds(response.headers.get("Retry-After")))
                        content_type = response.headers.get("Content-Type", "")
                        media = "".join(c for c in content_type.split(";", 1)[0].strip().lower()[:80]
                                        if c.isprintable()) or "no type"
                        verdict = type_verdict(kind, content_type)
                        if verdict is False:  # refused before a byte of it is read
                            raise DownloadRefused(f"download from {host}: {media} is not a {kind}")
                        data = await read_limited(response, max_bytes, f"download from {host}")
                        if not data:
                            raise BadResponse(f"download from {host}: an empty body", http_status=response.status)
                        if verdict is None and not _magic_fits(kind, data[:16]):
                            raise DownloadRefused(f"download from {host}: {media} whose first bytes are not a {kind}")
                        return data
                raise DownloadRefused(f"download from {host}: more than {MAX_REDIRECTS} redirects")
        except TimeoutError:
            raise Timeout(f"download from {host}: not done within the deadline") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, _RefusedAddress):
                what = "redirect refused: download" if redirected else "download"
                raise DownloadRefused(f"{what} from {host}: it resolves only to refused addresses "
                                      f"({exc.os_error.reasons})") from None
            raise Transport(f"download from {host}: cannot connect ({type(exc).__name__})") from None
        except aiohttp.ClientError as exc:
            raise Transport(f"download from {host}: {type(exc).__name__}") from None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._resolver = GuardedResolver(self.trusted, self._inner)
            connector = aiohttp.TCPConnector(resolver=self._resolver)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=None),  # each call's deadline is an asyncio timeout
                trust_env=False,  # no proxy from the environment: the connection goes to the checked address
            )
        return self._session


async def read_limited(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The body, or TooLarge as soon as it exceeds ``limit`` bytes (the connection is then closed, unread)."""
    if response.content_length is not None and response.content_length > limit:
        response.close()
        raise TooLarge(f"{what}: {response.content_length} bytes announced, over the bound of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            response.close()
            raise TooLarge(f"{what}: over the bound of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
