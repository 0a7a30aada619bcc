"""Separate "hosts" on one machine for the tests: network namespaces on a private bridge,
and OS users, each created by the test and removed when it ends.

A :class:`TestHosts` makes a bridge in the root namespace (the server's side: its address
is ``server_address``) and one namespace per co-signer, each linked to the bridge by a
veth pair (``address(i)`` inside). ``cut(i)`` takes co-signer ``i``'s link down (the
root end of its veth), ``restore(i)`` brings it back. ``command(i, argv)`` wraps a
command to run inside namespace ``i`` as that host's own OS user (``setpriv``), when the
test may create users (root).

Needs root and iproute2 (``ip netns``, ``ip link ... type bridge|veth``);
:func:`hosts_available` says whether this process has them.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


def _ip(*args: str, namespace: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)


def hosts_available() -> str | None:
    """Why namespaces cannot be made here (``None``: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("setpriv") is None:
        return "iproute2 and setpriv are needed"
    return None


@dataclass
class HostUser:
    """An OS user the test created for one host."""

    name: str
    uid: int
    gid: int


class TestHosts:
    """A bridge, ``count`` co-signer namespaces on it, and optionally one OS user per
    co-signer and one for the server (module docstring)."""

    __test__ = False  # not a test class

    def __init__(self, count: int, *, users: bool = True) -> None:
        self.tag = secrets.token_hex(3)
        # A /24 of its own per instance, so tests running at once do not collide.
        self.subnet = f"10.231.{secrets.randbelow(250) + 1}"
        self.bridge = f"svb{self.tag}"
        self.namespaces = {i: f"sv{self.tag}c{i}" for i in range(1, count + 1)}
        self._links = {i: f"sv{self.tag}h{i}" for i in self.namespaces}
        self.users: dict[str, HostUser] = {}
        self._made: list[str] = []
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self._made.append("bridge")
            _ip("addr", "add", f"{self.server_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, namespace in self.namespaces.items():
                _ip("netns", "add", namespace)
                self._made.append(namespace)
                inner = f"sv{self.tag}p{i}"
                _ip("link", "add", self._links[i], "type", "veth", "peer", "name", inner)
                _ip("link", "set", inner, "netns", namespace)
                _ip("link", "set", self._links[i], "master", self.bridge, "up")
                _ip("addr", "add", f"{self.address(i)}/24", "dev", inner, namespace=namespace)
                _ip("link", "set", inner, "up", namespace=namespace)
                _ip("link", "set", "lo", "up", namespace=namespace)
            if users:
                for name in [*(f"c{i}" for i in self.namespaces), "server"]:
                    self.users[name] = self._user(f"sv{self.tag}{name}")
        except BaseException:
            self.close()
            raise

    @property
    def server_address(self) -> str:
        """The server's address on the bridge (root namespace)."""
        return f"{self.subnet}.1"

    def address(self, i: int) -> str:
        """Co-signer ``i``'s address, inside its namespace."""
        return f"{self.subnet}.{10 + i}"

    def _user(self, name: str) -> HostUser:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
        return HostUser(name, entry.pw_uid, entry.pw_gid)

    def as_user(self, user: str | None, argv: Sequence[str]) -> list[str]:
        """``argv`` run as the host user ``user`` (unchanged without users)."""
        if user is None or user not in self.users:
            return list(argv)
        who = self.users[user]
        return [
            "setpriv",
            f"--reuid={who.uid}",
            f"--regid={who.gid}",
            "--clear-groups",
            "--",
            *argv,
        ]

    def command(self, i: int, argv: Sequence[str]) -> list[str]:
        """``argv`` inside co-signer ``i``'s namespace, as its own user."""
        return ["ip", "netns", "exec", self.namespaces[i], *self.as_user(f"c{i}", argv)]

    def chown(self, user: str, *paths: str) -> None:
        """Give ``paths`` (recursively) to the host user ``user``."""
        if user in self.users:
            who = self.users[user]
            for path in paths:
                subprocess.run(
                    ["chown", "-R", f"{who.uid}:{who.gid}", path], check=True, capture_output=True
                )

    def cut(self, i: int) -> None:
        """Take co-signer ``i``'s link down (its packets are lost from now on)."""
        _ip("link", "set", self._links[i], "down")

    def restore(self, i: int) -> None:
        """Bring co-signer ``i``'s link back."""
        _ip("link", "set", self._links[i], "up")

    def close(self) -> None:
        """Remove every namespace, link and user this made."""
        for namespace in self.namespaces.values():
            if namespace in self._made:
                subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        if "bridge" in self._made:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for user in self.users.values():
            subprocess.run(["userdel", user.name], capture_output=True)
        self._made.clear()
        self.users.clear()
