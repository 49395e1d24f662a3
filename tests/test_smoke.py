def test_health_needs_no_token(client):
    assert client.get("/health").get_json() == {"status": "ok"}


def test_create_then_list(alice):
    task = alice.create_task(title="  Buy milk  ")
    assert task["title"] == "Buy milk"
    listing = alice.get("/api/tasks").get_json()
    assert [t["id"] for t in listing["tasks"]] == [task["id"]]
    assert listing["count"] == 1

