"""Key layout, built in one place.

    {ns}:epoch                                      the namespace's epoch counter (rule 5)
    {ns}:gen:e{epoch}:{family}                      a view family's generation counter
    {ns}:{prefix}:v{version}:e{epoch}:{parts}       an entry, e.g. shop:item:v1:e3:17
    {ns}:{prefix}:v{version}:e{epoch}:{c:42}:1001   a client's entry: hash-tagged by client
    {ns}:{prefix}:v{version}:e{epoch}:g4.2:{parts}  a view entry keyed by its families' generations
    lease:{entry key}                               the single-flight lease for that entry

Bumping `version` (the cached JSON's schema) or the epoch makes old entries unreachable; they
age out by TTL. On Redis Cluster the `{c:<id>}` tag keeps one client's keys on one shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Part = str | int
Key = Part | tuple[Part, ...]

# Parts are joined with ':', so a part must not contain one (nor braces, which would make an
# accidental hash tag). Escaping keeps ("a:b",) and ("a", "b") apart.
_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})


@dataclass(frozen=True)
class Entity:
    """What is cached under one kind of key.

    `name` labels the metrics; `prefix` (default: `name`) starts the key; `version` is the schema
    version of the cached JSON, bumped whenever its shape changes. A `client_tagged` entity's key
    starts with the client id, wrapped in the hash tag `{c:<id>}`.
    """

    name: str
    prefix: str = ""
    version: int = 1
    client_tagged: bool = False

    @property
    def key_prefix(self) -> str:
        return f"{self.prefix or self.name}:v{self.version}"


class KeySpace:
    """Builds every Redis key of one namespace (`shop`, `mes`, ...)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.epoch = f"{namespace}:epoch"

    def entry(self, entity: Entity, epoch: int, key: Key, gens: Sequence[int] = ()) -> str:
        """The key of one entry; `gens` are the generations of a view's families."""
        head, tail = self.view_entry(entity, epoch, key)
        if gens:
            return f"{head}g{'.'.join(map(str, gens))}{tail}"
        return head[:-1] + tail

    def view_entry(self, entity: Entity, epoch: int, key: Key) -> tuple[str, str]:
        """A view entry's key around its generations: `head + "g4.2" + tail`, so that a script
        that reads the generations can finish the key in the same round trip."""
        parts = [_part(p) for p in (key if isinstance(key, tuple) else (key,))]
        if entity.client_tagged:
            if not parts:
                raise ValueError(f"{entity.name} keys start with a client id")
            parts[0] = f"{{c:{parts[0]}}}"
        head = f"{self.namespace}:{entity.key_prefix}:e{epoch}:"
        return head, "".join(":" + p for p in parts)

    def member_head(self, entity: Entity, epoch: int) -> str:
        """Where the keys of `entity`'s entries start: a script appends an id to it."""
        if entity.client_tagged:
            raise ValueError(f"{entity.name} keys need a client id, not only an id")
        return f"{self.namespace}:{entity.key_prefix}:e{epoch}:"

    def generation(self, epoch: int, family: str) -> str:
        """The counter of one view family. It lives under the epoch, like the entries."""
        return f"{self.namespace}:gen:e{epoch}:{family}"

    @staticmethod
    def lease(entry_key: str) -> str:
        """The lease key guarding the load of `entry_key` (same hash tag, same shard)."""
        return f"lease:{entry_key}"


def _part(part: Part) -> str:
    return str(part) if isinstance(part, int) else part.translate(_ESCAPES)
