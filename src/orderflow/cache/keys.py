"""Key layout, built in one place.

    {ns}:epoch                                     the namespace's epoch (one Redis node)
    {ns}:epoch:{1f3}                               the epoch of one slot (a cluster: `layout`)
    {ns}:gen:e{epoch}:{family}                     a view family's generation counter
    {ns}:{prefix}:v{version}:e{epoch}:{17}         an entry, e.g. shop:item:v1:e3:{17}
    {ns}:{prefix}:v{version}:e{epoch}:{c:42}:1001  a client's entry: hash-tagged by client
    {ns}:{prefix}:v{version}:e{epoch}:{1451}:810794
                                                   on a cluster, an entry whose id carries a
                                                   slot (810794 % 16384 = 7978, the slot of
                                                   {c:42}), tagged by a tag of that slot
    {ns}:{prefix}:v{version}:e{epoch}:{family}:g4.2:{parts}
                                                   a view entry keyed by its families'
                                                   generations, tagged by its first family
    lease:{entry key}                              the single-flight lease for that entry

Every key has a hash tag, so that on a Redis Cluster its slot, and so its epoch key, is known
before the key is built: an entry's first part (its id), a client's `{c:<id>}`, a generation
counter's family, a view's first family. A client's entries, lists and counters share a slot
when its family is named `c:<id>`; so do the orders of a client, whose ids carry the client's
slot (`Entity.slot_in_id`), so that one script on one shard serves a client's list page.
Bumping `version` (the cached JSON's schema) or the epoch
makes old entries unreachable; they age out by TTL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

Part = str | int
Key = Part | tuple[Part, ...]

SLOTS = REDIS_CLUSTER_HASH_SLOTS  # 16,384: an id that carries a slot carries it as `id % SLOTS`

# Parts are joined with ':', so a part must not contain one (nor braces, which would make an
# accidental hash tag). Escaping keeps ("a:b",) and ("a", "b") apart.
_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})
_TAG_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


@dataclass(frozen=True)
class Entity:
    """What is cached under one kind of key.

    `name` labels the metrics; `prefix` (default: `name`) starts the key; `version` is the schema
    version of the cached JSON, bumped whenever its shape changes. A `client_tagged` entity's key
    starts with the client id, wrapped in the hash tag `{c:<id>}`. A `slot_in_id` entity's id
    is an integer that carries a slot (`id % SLOTS`: an order's is its client's): on a cluster
    its key is tagged by that slot, so that it lives beside the client's list naming it.
    """

    name: str
    prefix: str = ""
    version: int = 1
    client_tagged: bool = False
    slot_in_id: bool = False

    @property
    def key_prefix(self) -> str:
        return f"{self.prefix or self.name}:v{self.version}"


def tag_slot(tag: str) -> int:
    """The slot of every key tagged `{tag}` on a Redis Cluster."""
    return key_slot(tag.encode())


class KeySpace:
    """Builds every Redis key of one namespace (`shop`, `mes`, ...).

    `slot_tags` (a cluster's: `layout.slot_tags()`) names, for each slot, a tag that hashes to
    it: given them, a `slot_in_id` entity's key is tagged by the slot its id carries. On one
    node, where a tag decides nothing, such a key is tagged by its id like any other, and a
    script builds it from the id alone."""

    def __init__(self, namespace: str, slot_tags: Sequence[str] = ()) -> None:
        self.namespace = namespace
        self.epoch = f"{namespace}:epoch"  # on one node (`layout` gives a cluster's)
        self.slot_tags = slot_tags

    def entry(
        self,
        entity: Entity,
        epoch: int,
        key: Key,
        gens: Sequence[int | str] = (),
        families: Sequence[str] = (),
    ) -> str:
        """The key of one entry; of a view's if `families` are given, `gens` their generations."""
        if families:
            head, tail = self.view_entry(entity, epoch, key, families)
            return f"{head}g{'.'.join(map(str, gens))}{tail}"
        parts = _parts(key)
        if not parts:
            what = "a client id" if entity.client_tagged else "at least one part"
            raise ValueError(f"{entity.name} keys need {what}")
        if entity.slot_in_id and self.slot_tags:
            tag = f"{{{self.slot_tags[int(parts[0]) % SLOTS]}}}"
            return f"{self.namespace}:{entity.key_prefix}:e{epoch}:{tag}:{':'.join(parts)}"
        tag = f"{{c:{parts[0]}}}" if entity.client_tagged else f"{{{parts[0]}}}"
        rest = "".join(":" + p for p in parts[1:])
        return f"{self.namespace}:{entity.key_prefix}:e{epoch}:{tag}{rest}"

    def view_entry(
        self, entity: Entity, epoch: int, key: Key, families: Sequence[str]
    ) -> tuple[str, str]:
        """A view entry's key around its generations: `head + "g4.2" + tail`, so that a script
        that reads the generations can finish the key in the same round trip. A view is tagged
        by its first family, so that family's counter shares the entry's slot."""
        if not families:
            raise ValueError(f"a view of {entity.name} needs a family")
        head = f"{self.namespace}:{entity.key_prefix}:e{epoch}:{_tag(families[0])}:"
        return head, "".join(":" + p for p in _parts(key))

    def member_head(self, entity: Entity, epoch: int) -> str:
        """Where the keys of `entity`'s entries start: a script appends `{id}` to it, or
        `{<tag>}:id` for a `slot_in_id` entity whose ids carry the slot of `slot_tags`' tag."""
        if entity.client_tagged:
            raise ValueError(f"{entity.name} keys need a client id, not only an id")
        return f"{self.namespace}:{entity.key_prefix}:e{epoch}:"

    def generation(self, epoch: int, family: str) -> str:
        """The counter of one view family, tagged by it. It lives under the epoch of its slot,
        like the entries."""
        return f"{self.namespace}:gen:e{epoch}:{_tag(family)}"

    @staticmethod
    def lease(entry_key: str) -> str:
        """The lease key guarding the load of `entry_key` (same hash tag, same shard)."""
        return f"lease:{entry_key}"


def _tag(family: str) -> str:
    """A family as a hash tag: braces escaped, colons kept (a client's family `c:42` must hash
    like its entries' tag `{c:42}`; within braces a colon separates nothing)."""
    return "{" + family.translate(_TAG_ESCAPES) + "}"


def _parts(key: Key) -> list[str]:
    return [_part(p) for p in (key if isinstance(key, tuple) else (key,))]


def _part(part: Part) -> str:
    return str(part) if isinstance(part, int) else part.translate(_ESCAPES)
