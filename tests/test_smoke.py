"""The app starts, answers /healthz and /readyz, and the seed loads on every engine."""

from fastapi.testclient import TestClient


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["revision"] >= 1
