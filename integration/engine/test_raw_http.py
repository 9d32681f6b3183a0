"""Malformed requests through raw HTTP on the socket."""

import json


def post_json(d, path, body):
    return d.http("POST", path, body=body, headers={"Content-Type": "application/json"})


def test_bad_json_body_is_400(daemon):
    st, h, body = post_json(daemon, "/v1.50/containers/create", "{not json")
    assert st == 400, (st, body)
    assert h["content-type"].startswith("application/json")
    msg = json.loads(body)["message"]
    assert "JSON" in msg or "json" in msg, msg


def test_wrong_field_type_names_the_field(daemon):
    st, _, body = post_json(daemon, "/v1.50/containers/create", json.dumps({"Image": "busybox", "Cmd": 5}))
    assert st == 400, (st, body)
    assert "Cmd" in json.loads(body)["message"]
    st, _, body = post_json(daemon, "/v1.50/containers/create",
                            json.dumps({"Image": "busybox", "HostConfig": {"Memory": "lots"}}))
    assert st == 400, (st, body)
    assert "Memory" in json.loads(body)["message"]


def test_empty_body_is_400(daemon):
    st, _, body = post_json(daemon, "/v1.50/containers/create", "")
    assert st == 400, (st, body)
    assert json.loads(body)["message"]


def test_bad_query_parameter_is_400(daemon):
    st, _, body = daemon.http("GET", "/v1.50/containers/json?limit=abc")
    # moby ignores/validates; cryod must at least not crash
    assert st in (200, 400), (st, body)
    st, _, body = daemon.http("POST", "/v1.50/containers/nosuch/stop?t=abc")
    assert st in (400, 404), (st, body)


def test_unknown_route_is_404_json(daemon):
    for method, path in (("GET", "/v1.50/nosuch"), ("GET", "/nosuch/route"),
                         ("POST", "/v1.50/containers/x/frobnicate"), ("GET", "/v1.50/networks/x"),
                         ("GET", "/v1.50/plugins")):
        st, h, body = daemon.http(method, path)
        assert st == 404, (method, path, st, body)
        assert h["content-type"].startswith("application/json")
        assert isinstance(json.loads(body)["message"], str)


def test_unknown_container_is_404_with_docker_message(daemon):
    st, _, body = daemon.http("GET", "/v1.50/containers/nosuch/json")
    assert st == 404
    assert json.loads(body)["message"] == "No such container: nosuch"


def test_old_api_version_is_400(daemon):
    st, _, body = daemon.http("GET", "/v1.12/containers/json")
    assert st == 400
    assert "too old" in json.loads(body)["message"]


def test_ping_headers(daemon):
    st, h, body = daemon.http("GET", "/_ping")
    assert st == 200 and body == b"OK"
    assert h["api-version"] == "1.50"
    assert h["docker-experimental"] == "true"
    assert h["ostype"] == "linux"
    st, h, body = daemon.http("HEAD", "/_ping")
    assert st == 200
