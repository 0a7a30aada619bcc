"""The SSRF guard: which addresses the server may send requests to on a user's behalf.

Two kinds of URL come from API callers and are later contacted by the server itself:
webhook endpoints (``service.webhooks``, sent to by ``WebhookDispatcher``) and the JSON-RPC
nodes of networks (``rpc_url``, ``service.vaults``, used by the pipeline). Both go through
this one guard, each with its own :class:`DestinationPolicy`:

* when the URL is configured, :meth:`DestinationPolicy.check_url` checks what it can
  without DNS (scheme, host, no fragment; an IP literal, in any form the system resolver
  accepts, or ``localhost``, must be an allowed address; cloud metadata host names are
  refused) and the API refuses the URL with a 400 naming the field and the reason;
* at every connection, :class:`GuardedTransport` resolves the host itself, checks every
  address the name has, and connects to a checked address, so a name that resolves
  elsewhere later (DNS rebinding) is refused then. TLS still verifies against the host
  name, and redirects are never followed by the clients that use it.

An address is allowed when it is global (not loopback, private, link-local, shared,
multicast, reserved, cloud metadata...) or inside a network the operator allowed
explicitly. IPv4 addresses written inside IPv6 (``::ffff:a.b.c.d``, and the NAT64 prefix
``64:ff9b::/96`` that a NAT64 gateway turns back into IPv4) are judged as the IPv4
address they stand for.

The webhook policy allows a cloud metadata address only through an allowed network that
contains it and is no wider than a /16 (IPv4) or /64 (IPv6). The node policy
(:meth:`DestinationPolicy.for_rpc_nodes`) allows loopback by default, for a node on the
same host (the development chain), and never a link-local or metadata address, whatever
the allowed networks.
"""

import ipaddress
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from shardvault.service.errors import ServiceError, ValidationError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(ServiceError):
    """A destination resolves to an address the SSRF guard does not allow (raised at
    connection time; a refused URL at configuration time is a ``ValidationError``)."""

    problem = "destination-refused"


ALWAYS_REFUSED: tuple[IpAddress, ...] = (
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack metadata
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud metadata
    ipaddress.ip_address("fd00:ec2::254"),  # AWS metadata over IPv6
)
"""Cloud metadata services: refused unless an allowed network names them explicitly (and
by the node policy always)."""

LOOPBACK_NETWORKS: tuple[IpNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
"""This host: where the development chain of ``make demo`` and the tests listens."""

_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data"})
_LOOPBACK_V4 = ipaddress.ip_address("127.0.0.1")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052 §2.1): its last 32 bits are an IPv4 address."""

_CONFIGURABLE = (
    "loopback, private, link-local and metadata addresses are refused unless allowed by "
    "configuration"
)


def _unmapped(address: IpAddress) -> IpAddress:
    """The IPv4 address an IPv4-mapped or NAT64 IPv6 address stands for, else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def parse_networks(values: Iterable[str], field: str = "allowed_networks") -> tuple[IpNetwork, ...]:
    """Parse CIDR strings (``127.0.0.0/8``, ``::1/128``, a bare address).

    Raises:
        ValidationError: a value is not a network (named as ``field``).
    """
    networks: list[IpNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValidationError(field, f"{value!r} is not a network") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Which addresses requests may be sent to.

    By default only global addresses. ``allowed_networks`` opens specific non-global
    networks (``127.0.0.0/8`` for tests and local development, an intranet range for a
    receiver or a node inside the operator's network); a cloud metadata address is allowed
    only by a network that contains it and is no wider than a /16 (IPv4) or /64 (IPv6).
    With ``never_link_local``, link-local and cloud metadata addresses are refused even
    inside an allowed network.
    """

    allowed_networks: tuple[IpNetwork, ...] = ()
    never_link_local: bool = False

    @classmethod
    def loopback_allowed(cls) -> "DestinationPolicy":
        """For tests and development: receivers on this machine are allowed."""
        return cls(LOOPBACK_NETWORKS)

    @classmethod
    def for_rpc_nodes(
        cls, allowed_networks: Iterable[IpNetwork] = (), *, loopback: bool = True
    ) -> "DestinationPolicy":
        """The policy of networks' ``rpc_url``: public nodes, a node on this host unless
        ``loopback`` is false, nodes in ``allowed_networks``, and never a link-local or
        cloud metadata address."""
        networks = (*(LOOPBACK_NETWORKS if loopback else ()), *allowed_networks)
        return cls(tuple(networks), never_link_local=True)

    def _explicitly_allowed(self, address: IpAddress) -> bool:
        return any(
            address in net for net in self.allowed_networks if net.version == address.version
        )

    def _never(self, address: IpAddress) -> bool:
        return self.never_link_local and (address.is_link_local or address in ALWAYS_REFUSED)

    def address_allowed(self, address: IpAddress) -> bool:
        address = _unmapped(address)
        if self._never(address):
            return False
        if address in ALWAYS_REFUSED:
            narrow = 16 if address.version == 4 else 64
            return any(
                address in net and net.prefixlen >= narrow
                for net in self.allowed_networks
                if net.version == address.version
            )
        if self._explicitly_allowed(address):
            return True
        return address.is_global and not address.is_multicast

    def _why_not(self, address: IpAddress) -> str:
        if self._never(_unmapped(address)):
            return "a link-local or cloud metadata address, never allowed here"
        return f"not an allowed destination ({_CONFIGURABLE})"

    def check_address(self, address: IpAddress, host: str) -> None:
        """Raise unless ``address`` (which ``host`` resolved to) may be connected to.

        Raises:
            DestinationRefused: an address outside what the policy allows.
        """
        if not self.address_allowed(address):
            raise DestinationRefused(
                f"host {host!r} resolves to {address}, which is {self._why_not(address)}"
            )

    def check_url(self, url: str, *, field: str = "url", allow_credentials: bool = False) -> str:
        """Validate a URL when it is configured; return it stripped.

        Checks what can be checked without DNS: the scheme (http or https), a host, no
        user name or password unless ``allow_credentials`` (a node's RPC credentials),
        no fragment, no control characters, and, when the host is an IP address (in any
        form the system resolver accepts, such as ``2130706433``) or ``localhost``, that
        the address is allowed; cloud metadata host names are refused. Names are checked
        again, resolved, at every connection (:class:`GuardedTransport`).

        Raises:
            ValidationError: the URL is not acceptable (named as ``field``).
        """
        url = url.strip()
        if not 1 <= len(url) <= 2048:
            raise ValidationError(field, "must be 1 to 2048 characters")
        if any(ord(c) <= 32 or ord(c) == 127 for c in url):
            raise ValidationError(field, "must not contain spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValidationError(field, f"not a URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValidationError(field, "only http and https URLs are allowed")
        if not allow_credentials and (parts.username is not None or parts.password is not None):
            raise ValidationError(field, "must not carry a user name or password")
        if parts.fragment:
            raise ValidationError(field, "must not have a fragment")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise ValidationError(field, "has no host")
        if port == 0:
            raise ValidationError(field, "port 0 is not a port")
        for address in _literal_addresses(host):
            if not self.address_allowed(address):
                raise ValidationError(
                    field, f"host {host!r} is {address}, which is {self._why_not(address)}"
                )
        if host.lower() in _METADATA_NAMES:
            raise ValidationError(field, f"host {host!r} is a cloud metadata service")
        return url


def _literal_addresses(host: str) -> list[IpAddress]:
    """The address(es) a host stands for without DNS: an IP literal, a legacy IPv4 form
    that ``inet_aton`` accepts (``2130706433``, ``0x7f.1``), or localhost."""
    lowered = host.lower()
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return [_LOOPBACK_V4, ipaddress.ip_address("::1")]
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if all(c in "0123456789abcdefx." for c in lowered):
        try:
            return [ipaddress.ip_address(socket.inet_aton(host))]
        except OSError:
            return []
    return []


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves the host, checks every address with the policy, then connects to a checked
    address (so the address used is the address checked)."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc.strerror}") from None
        addresses: list[IpAddress] = []
        for info in infos:
            literal = str(info[4][0]).split("%", 1)[0]
            address = ipaddress.ip_address(literal)
            # Every address the name has must be allowed, not just the one we would use.
            self._policy.check_address(address, host)
            if address not in addresses:
                addresses.append(address)
        last: Exception | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host!r} has no address")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefused("requests are never sent to a Unix socket")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], response: httpcore.Response) -> None:
        self._stream = stream
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        self._response.close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport whose every connection goes through the SSRF guard.

    A refused address raises :class:`DestinationRefused` out of the request (not an
    ``httpx`` error), so callers can tell it from a node or receiver that is down.
    """

    def __init__(self, policy: DestinationPolicy, *, max_connections: int = 20) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            network_backend=_GuardedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self._pool.handle_request(core_request)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc) or "timed out", request=request) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ConnectError) as exc:
            raise httpx.TransportError(str(exc) or type(exc).__name__) from None
        stream = response.stream
        assert isinstance(stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(stream, response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
