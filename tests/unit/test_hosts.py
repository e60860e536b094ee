"""`kit/security.Hosts`: Starlette's TrustedHostMiddleware rule, allowed values remembered."""

from orderflow.kit.security import Hosts


def test_names_ports_and_ipv6_literals_are_matched_as_starlette_matches_them() -> None:
    hosts = Hosts(["127.0.0.1", "localhost", "[::1]", "Orders.Example"])
    for allowed in (b"127.0.0.1:8001", b"localhost", b"[::1]:8002", b"orders.example:80"):
        assert hosts.allow(allowed), allowed
    for refused in (b"evil.example", b"127.0.0.2:8001", b"[::2]:8001", b"localhost.evil", None):
        assert not hosts.allow(refused), refused
    assert not hosts.allow(b"local host")  # not a host at all
    assert not hosts.allow(b"[::zz]:80")  # brackets around something that is no address


def test_a_wildcard_covers_subdomains_only_and_a_star_covers_all() -> None:
    hosts = Hosts(["*.example.com"])
    assert hosts.allow(b"crm.example.com:8002")
    assert not hosts.allow(b"example.com") and not hosts.allow(b"evilexample.com")
    assert Hosts(["*"]).allow(b"anything.at.all") and Hosts(["*"]).allow(None)


def test_only_allowed_values_are_remembered_and_only_so_many() -> None:
    hosts = Hosts(["localhost"])
    for port in range(Hosts.REMEMBERED * 2):
        assert hosts.allow(f"localhost:{port}".encode())
        assert not hosts.allow(f"evil:{port}".encode())
    assert len(hosts._seen) == Hosts.REMEMBERED
    assert all(value.startswith(b"localhost:") for value in hosts._seen)
    assert hosts.allow(b"localhost:9999")  # past the limit, still answered: by the rule
