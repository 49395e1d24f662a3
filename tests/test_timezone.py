"""The user's time zone (contract section 6, "Users"): `timezone`, an IANA name defaulting to UTC,
set with PATCH /api/users/me or the Phase II profile (/api/{user_id}/profile: GET, PUT partial,
PATCH), refused when unknown by the service (422) and by PostgreSQL itself."""
import psycopg2
import pytest

from service.recurrence import time_zones

PROFILES = ["/api/users/me", "/api/{user}/profile", "/api/v1/users/me", "/api/v1/{user}/profile"]


def profile(caller, path="/api/{user}/profile"):
    return path.format(user=caller.id)


@pytest.mark.parametrize("path", PROFILES)
def test_the_time_zone_defaults_to_utc(alice, path):
    response = alice.get(profile(alice, path))
    assert response.status_code == 200
    assert response.get_json()["timezone"] == "UTC"


def test_the_profile_is_the_callers_users_me(alice):
    me = alice.get("/api/users/me").get_json()
    assert alice.get(profile(alice)).get_json() == me
    assert set(me) == {"id", "email", "name", "timezone", "created_at", "updated_at"}
    assert me["id"] == alice.id


@pytest.mark.parametrize("method, path", [("PATCH", path) for path in PROFILES]
                         + [("PUT", path) for path in PROFILES if path.endswith("/profile")])
def test_setting_the_time_zone_shows_everywhere(alice, path, method):
    response = alice.request(method, profile(alice, path), json={"timezone": "Europe/Berlin"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["timezone"] == "Europe/Berlin"
    for other in PROFILES:
        assert alice.get(profile(alice, other)).get_json()["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_on_the_profile_are_partial(alice, method):
    email = f"{alice.id}@example.org"
    assert alice.patch("/api/users/me", json={"name": "Ada", "email": email}).status_code == 200
    before = alice.get("/api/users/me").get_json()
    response = alice.request(method, profile(alice), json={"timezone": "America/New_York"})
    assert response.status_code == 200
    after = response.get_json()
    assert (after["name"], after["email"], after["timezone"]) == ("Ada", email, "America/New_York")
    assert after["created_at"] == before["created_at"] and after["updated_at"] > before["updated_at"]
    renamed = alice.request(method, profile(alice), json={"name": "Ada L."}).get_json()
    assert (renamed["name"], renamed["timezone"]) == ("Ada L.", "America/New_York")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_an_empty_profile_update_is_422(alice, method):
    response = alice.request(method, profile(alice), json={})
    assert response.status_code == 422
    assert alice.request(method, profile(alice), json={"id": "someone-else"}).status_code == 422


def test_the_time_zone_is_trimmed(alice):
    assert alice.patch("/api/users/me", json={"timezone": "  Asia/Tokyo "}).get_json()["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Springfield", "localtime", "posixrules", "+05:00",
                                  "UTC+3", "", "   ", None, 5, ["UTC"], "Europe/Berlin\x00", "E" * 65])
@pytest.mark.parametrize("path", ["/api/users/me", "/api/{user}/profile", "/api/v1/{user}/profile"])
def test_an_unknown_time_zone_is_422_naming_it(alice, zone, path):
    response = alice.patch(profile(alice, path), json={"timezone": zone})
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == ["timezone"]
    assert alice.get("/api/users/me").get_json()["timezone"] == "UTC"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_another_ids_profile_is_403(alice, bob, method, prefix):
    response = alice.request(method, f"{prefix}/{bob.id}/profile", json={"timezone": "Europe/Berlin"})
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"
    assert bob.get("/api/users/me").get_json()["timezone"] == "UTC"


def test_the_profile_routes_need_a_token(client, alice):
    for method in ("GET", "PUT", "PATCH"):
        assert client.open(profile(alice), method=method, json={"name": "x"}).status_code == 401


def test_the_export_carries_the_time_zone(alice):
    alice.patch("/api/users/me", json={"timezone": "Pacific/Auckland"})
    assert alice.get("/api/users/me/export").get_json()["user"]["timezone"] == "Pacific/Auckland"


# --- What the database refuses by itself --------------------------------------------------

def test_the_database_defaults_the_time_zone_to_utc_and_requires_one(admin_db):
    with admin_db.cursor() as cur:
        cur.execute("INSERT INTO users (id) VALUES ('tz-default-user') RETURNING timezone")
        assert cur.fetchone() == ("UTC",)
        with pytest.raises(psycopg2.errors.NotNullViolation):
            cur.execute("UPDATE users SET timezone = NULL WHERE id = 'tz-default-user'")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Springfield", "", "E" * 65])
def test_the_database_refuses_an_unknown_time_zone(admin_db, zone):
    with admin_db.cursor() as cur:
        with pytest.raises(psycopg2.errors.CheckViolation) as refused:
            cur.execute("INSERT INTO users (id, timezone) VALUES (%s, %s)", (f"tz-bad-{len(zone)}", zone))
        assert refused.value.diag.constraint_name == "users_timezone_known"


def test_the_database_accepts_every_zone_the_service_accepts(admin_db):
    # Else a zone the service lets through would be a database error, not a 422.
    with admin_db.cursor() as cur:
        cur.execute("SELECT name FROM unnest(%s::text[]) AS name WHERE NOT is_time_zone(name)", (sorted(time_zones()),))
        assert cur.fetchall() == []
    assert {"UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland", "Asia/Kolkata"} <= time_zones()
