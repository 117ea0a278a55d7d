"""Result downloads only from where results live, over real HTTP on 127.0.0.1.

The fake KIE is a trusted host (the explicit allow-list the demo and the tests use); a loopback
"credentials" server stands for what a bot can reach inside its own network (a metadata service,
an admin port) and must never be fetched from, directly or through a redirect.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

import config
from fakes.kie_api import FakeKie
from kie import (
    MAX_REDIRECTS,
    Downloader,
    DownloadRefused,
    GuardedResolver,
    KieClient,
    RetryPolicy,
    TooLarge,
    TrustedHost,
    address_refusal,
    parse_trusted_hosts,
)

pytestmark = pytest.mark.timeout(60)

KEY = "kie-download-key-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
SECRET = "s3cr3t-query-token-0123"
CREDENTIALS = b'{"AccessKeyId": "AKIA-LOOPBACK", "SecretAccessKey": "never-in-a-chat"}'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Site:
    """A small aiohttp server on 127.0.0.1 that counts what it is asked."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        self.netloc = ""
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.netloc}"

    @property
    def port(self) -> int:
        return int(self.netloc.rsplit(":", 1)[1])

    async def __aenter__(self) -> Site:
        async def any_path(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path)
            handler = self.routes.get(request.path)
            if handler is None:
                raise web.HTTPNotFound()
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_path)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.netloc = f"{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def redirect(location: str | Callable[[], str], status: int = 302) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location() if callable(location) else location})
    return handle


def body(data: bytes, content_type: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=data)
        response.headers["Content-Type"] = content_type
        return response
    return handle


async def untyped(data: bytes) -> asyncio.Server:
    """A server whose answer has no Content-Type at all (aiohttp's own would always name one)."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(data) + data)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def fetch(kie: KieClient, url: str, kind: str, max_bytes: int = 1_000_000) -> bytes:
    return await kie.download(url, max_bytes, kind=kind)


@pytest.fixture
async def fake() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KEY, duration=0.1) as server:
        yield server


@pytest.fixture
async def credentials() -> AsyncIterator[Site]:
    """Loopback, untrusted: what the bot's own network holds."""
    async def creds(request: web.Request) -> web.StreamResponse:
        return web.Response(body=CREDENTIALS, content_type="image/png")  # it even claims to be a picture

    async with Site({"/latest/meta-data/iam/credentials": creds}) as site:
        yield site


@pytest.fixture
async def kie(fake: FakeKie) -> AsyncIterator[KieClient]:
    async with KieClient(KEY, fake.base_url, fake.base_url, timeout=5, retry=RetryPolicy(attempts=3, base=0.01),
                         download_trusted_hosts=[urlsplit(fake.base_url).netloc]) as client:
        yield client


# ---------------------------------------------------------------------- where a result may come from


async def test_a_loopback_credentials_server_is_refused_directly(kie: KieClient, credentials: Site) -> None:
    path = f"/latest/meta-data/iam/credentials?token={SECRET}"
    for url in (f"http://{credentials.netloc}{path}", f"https://{credentials.netloc}{path}",
                f"https://localhost:{credentials.port}{path}", f"https://[::ffff:127.0.0.1]:{credentials.port}{path}"):
        with pytest.raises(DownloadRefused) as caught:
            await fetch(kie, url, "photo")
        assert not caught.value.retryable
        assert SECRET not in str(caught.value) and "meta-data" not in str(caught.value), "no path or query shown"
    assert credentials.hits == [], "not one request reached the credentials server"


async def test_a_redirect_from_a_trusted_host_to_loopback_is_refused(credentials: Site) -> None:
    targets = [f"http://{credentials.netloc}/latest/meta-data/iam/credentials",
               f"https://127.0.0.1:{credentials.port}/latest/meta-data/iam/credentials",
               f"https://localhost:{credentials.port}/latest/meta-data/iam/credentials",  # a name: resolved, refused
               "https://169.254.169.254/latest/meta-data/iam/credentials"]
    routes = {f"/r{i}.png": redirect(target) for i, target in enumerate(targets)}
    async with Site(routes) as trusted, \
            KieClient(KEY, download_trusted_hosts=[trusted.netloc], retry=RetryPolicy(attempts=2, base=0.01)) as kie:
        for i in range(len(targets)):
            with pytest.raises(DownloadRefused) as caught:
                await fetch(kie, f"{trusted.base_url}/r{i}.png?sig={SECRET}", "photo")
            assert "redirect" in str(caught.value) and SECRET not in str(caught.value)
        assert trusted.hits == [f"/r{i}.png" for i in range(len(targets))], "each refused once, never retried"
    assert credentials.hits == [], "the redirect was never followed to the credentials server"


async def test_plain_http_to_an_untrusted_host_is_refused_before_any_connection(kie: KieClient, fake: FakeKie) -> None:
    port = urlsplit(fake.base_url).port
    for url in ("http://results.example/x.png", f"http://127.0.0.1:{(port or 0) + 1}/x.png",
                f"http://localhost:{port}/files/x.png"):  # trusted is 127.0.0.1:<port>, exactly
        with pytest.raises(DownloadRefused):
            await fetch(kie, url, "photo")
    for url in ("ftp://results.example/x.png", "/files/x.png", "https://user:pw@results.example/x.png"):
        with pytest.raises(DownloadRefused):
            await fetch(kie, url, "document")
    assert fake.calls() == []


async def test_a_redirect_chain_within_trusted_hosts_is_followed(fake: FakeKie) -> None:
    url = fake.add_file("results/fox.png", PNG, "image/png")
    async with Site({"/b": redirect(url, 307)}) as second, \
            Site({"/a": redirect(lambda: f"{second.base_url}/b", 301), "/loop": redirect("/loop")}) as first, \
            KieClient(KEY, download_trusted_hosts=[first.netloc, second.netloc, urlsplit(fake.base_url).netloc],
                      retry=RetryPolicy(attempts=2, base=0.01)) as kie:
        assert await fetch(kie, f"{first.base_url}/a", "photo") == PNG
        assert (first.hits, second.hits) == (["/a"], ["/b"])
        with pytest.raises(DownloadRefused) as caught:
            await fetch(kie, f"{first.base_url}/loop", "photo")
        assert f"more than {MAX_REDIRECTS} redirects" in str(caught.value)
        assert first.hits.count("/loop") == MAX_REDIRECTS + 1


# ---------------------------------------------------------------------- what a result may be


async def test_an_html_page_is_never_a_result(kie: KieClient, fake: FakeKie) -> None:
    page = fake.add_file("results/page.png", b"<!DOCTYPE html><html><title>Sign in</title></html>", "text/html")
    for kind in ("photo", "document"):
        with pytest.raises(DownloadRefused) as caught:
            await fetch(kie, page, kind)
        assert "text/html" in str(caught.value)
    assert len(fake.calls("results/page.png")) == 2, "refused, not retried"
    video = fake.add_file("results/fox.mp4", PNG, "image/png")
    with pytest.raises(DownloadRefused):
        await fetch(kie, video, "video")


async def test_an_untyped_answer_is_a_result_only_when_its_magic_fits() -> None:
    mp4 = b"\0\0\0\x18ftypisom" + b"\0" * 32
    routes = {"/png": body(PNG, "application/octet-stream"),
              "/html": body(b"<html><body>login</body></html>", "application/octet-stream"),
              "/mp4": body(mp4, "binary/octet-stream"), "/mp3": body(b"ID3\x03\0\0\0\0\0\0" + b"\0" * 32, "")}
    bare = await untyped(PNG)
    bare_netloc = f"127.0.0.1:{bare.sockets[0].getsockname()[1]}"
    async with bare, Site(routes) as site, KieClient(KEY, download_trusted_hosts=[site.netloc, bare_netloc],
                                               retry=RetryPolicy(attempts=1)) as kie:
        assert await fetch(kie, f"{site.base_url}/png", "photo") == PNG
        assert await fetch(kie, f"http://{bare_netloc}/png", "photo") == PNG
        with pytest.raises(DownloadRefused):
            await fetch(kie, f"http://{bare_netloc}/png", "audio")
        assert await fetch(kie, f"{site.base_url}/mp4", "video") == mp4
        assert (await fetch(kie, f"{site.base_url}/mp3", "audio")).startswith(b"ID3")
        for path, kind in (("/html", "photo"), ("/png", "video"), ("/mp4", "photo"), ("/png", "audio")):
            with pytest.raises(DownloadRefused):
                await fetch(kie, f"{site.base_url}{path}", kind)
        assert await fetch(kie, f"{site.base_url}/html", "document")  # a document may be anything but HTML's type


async def test_the_size_bound_still_holds(kie: KieClient, fake: FakeKie) -> None:
    url = fake.add_file("results/big.png", PNG + b"\0" * 100_000, "image/png")
    with pytest.raises(TooLarge):
        await fetch(kie, url, "photo", max_bytes=1000)
    assert len(fake.calls("results/big.png")) == 1, "too large is not retried"


# ---------------------------------------------------------------------- the checks, unit by unit


class NameResolver(AbstractResolver):
    """Answers from a table, as a hostile or rebinding DNS could."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET, proto=0, flags=0)
                for address in self.table[host]]

    async def close(self) -> None:
        pass


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    names = NameResolver({"evil.example": ["10.1.2.3"], "meta.example": ["169.254.169.254"],
                          "mixed.example": ["192.168.1.1", "93.184.216.34"], "fake.test": ["127.0.0.1"]})
    guard = GuardedResolver([TrustedHost("fake.test", 8082)], names)
    for host in ("evil.example", "meta.example"):
        with pytest.raises(OSError, match="refused addresses"):
            await guard.resolve(host, 443)
    assert [r["host"] for r in await guard.resolve("mixed.example", 443)] == ["93.184.216.34"], "only the public one"
    assert [r["host"] for r in await guard.resolve("fake.test", 8082)] == ["127.0.0.1"], "trusted: as resolved"
    with pytest.raises(OSError):
        await guard.resolve("fake.test", 8083)  # trusted on its port only

    downloader = Downloader("TRT/test", resolver=names)
    try:
        for host in ("evil.example", "meta.example"):
            with pytest.raises(DownloadRefused) as caught:
                await downloader.fetch(f"https://{host}/result.png?X-Amz-Signature={SECRET}", 1000, "photo",
                                       deadline=asyncio.get_running_loop().time() + 5)
            assert host in str(caught.value) and SECRET not in str(caught.value)
    finally:
        await downloader.close()
    assert names.asked.count("evil.example") == 2, "the connection asked the guarded resolver"


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.1", "private"), ("172.16.5.4", "private"),
    ("192.168.0.1", "private"), ("100.64.0.1", "shared (CGNAT)"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("fd00::1", "private"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("2002:7f00:1::", "loopback"),
    ("93.184.216.34", None), ("2606:4700::6810:84e5", None), ("8.8.8.8", None),
])
def test_addresses_a_download_may_connect_to(address: str, why: str | None) -> None:
    assert address_refusal(address) == why


def test_trusted_hosts_setting_is_checked_in_one_line() -> None:
    settings = config.load("demo", {"DOWNLOAD_TRUSTED_HOSTS": " 127.0.0.1:8082, Results.Example ,[::1]:9000"})
    assert settings.download_trusted_hosts == ("127.0.0.1:8082", "results.example", "[::1]:9000")
    assert parse_trusted_hosts(settings.download_trusted_hosts) == (
        TrustedHost("127.0.0.1", 8082), TrustedHost("results.example"), TrustedHost("::1", 9000))
    assert config.load("demo", {}).download_trusted_hosts == ()
    for bad in ("http://127.0.0.1:8082", "127.0.0.1:8082/files", "*.example", "host:99999", "u@host"):
        with pytest.raises(config.ConfigError) as caught:
            config.load("demo", {"DOWNLOAD_TRUSTED_HOSTS": bad})
        (problem,) = caught.value.problems
        assert problem.startswith("DOWNLOAD_TRUSTED_HOSTS must be") and "\n" not in problem
