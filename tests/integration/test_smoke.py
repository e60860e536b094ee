import httpx


async def test_health_reports_every_dependency(
    shop: httpx.AsyncClient, mes: httpx.AsyncClient
) -> None:
    shop_health = (await shop.get("/health")).json()
    mes_health = (await mes.get("/health")).json()
    assert shop_health == {"shopdb": "ok", "redis": "ok", "cache": "ok", "status": "ok"}
    assert mes_health == {"mesdb": "ok", "redis": "ok", "cache": "ok", "status": "ok"}
