"""Looking inside the cache from tests: metrics as /metrics shows them, keys as Redis holds them."""

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from orderflow.cache import Cache


def app_of(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app


def cache_of(client: httpx.AsyncClient) -> Cache:
    cache = app_of(client).state.context.cache.cache
    assert isinstance(cache, Cache)
    return cache


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample from the service's own /metrics page (0 when absent)."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def hits(client: httpx.AsyncClient, entity: str) -> float:
    """Reads served by the cache: from Redis, or without leaving the process (near cache)."""
    name = "orderflow_cache_requests_total"
    redis = await metric(client, name, entity=entity, result="hit")
    return redis + await metric(client, name, entity=entity, result="near_hit")


async def misses(client: httpx.AsyncClient, entity: str) -> float:
    return await metric(client, "orderflow_cache_requests_total", entity=entity, result="miss")
