"""Service-account token rotation, both sides, without a server: the node agent's refresh rule
(the kubelet's `requiresRefresh`), its record of issue/expiry times, its atomic rewrite and
error handling (a fake API client); the client's re-reading of a token file (httpx's
MockTransport echoes the bearer token each request carried)."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest

from kubelab.client import ApiClient, ApiError
from kubelab.client.kubeconfig import Connection, KubeconfigError, in_cluster, load
from kubelab.client.rest import FileTokenAuth
from kubelab.nodeagent import satoken
from kubelab.nodeagent.satoken import requires_refresh

H = 3600
T0 = 1_700_000_000.0


# ---- requires_refresh: the kubelet's rule ----------------------------------------------

@pytest.mark.parametrize("ttl,age,jitter,want", [
    (48 * H, 0, 0, False),                  # fresh
    (48 * H, 60, 0, False),
    (600, 0.79 * 600, 0, False),            # 79% of a 10-minute token
    (600, 0.81 * 600, 0, True),             # 81%
    (600, 0.80 * 600, 0, False),            # exactly 80%: strictly after, as time.After
    (H, 0.79 * H, 0, False),
    (H, 0.81 * H, 0, True),
    (10 * H, 0.81 * 10 * H, 0, True),
    (48 * H, 23 * H, 0, False),             # 48 h token at 23 h: under 80% and under 24 h
    (48 * H, 24 * H, 0, False),             # exactly 24 h
    (48 * H, 24 * H + 1, 0, True),          # older than 24 h, though at only 50% of its TTL
    (48 * H, 30 * H, 0, True),
    (48 * H, 24 * H - 5, 10, True),         # the jitter moves the 24 h threshold earlier
    (600, 0.80 * 600 - 5, 10, True),        # ... and the 80% one
    (48 * H, 48 * H + 1, 0, True),          # already expired
    (48 * H, -60, 0, True),                 # clock leapt back: issued "in the future"
    (48 * H, -0.001, 0, True),
])
def test_requires_refresh(ttl, age, jitter, want):
    assert requires_refresh(issued_at=T0, expires_at=T0 + ttl, now=T0 + age, jitter=jitter) is want


def test_requires_refresh_is_keyword_only():
    with pytest.raises(TypeError):
        requires_refresh(T0, T0 + H, T0)  # type: ignore[misc]


# ---- issue/expiry times --------------------------------------------------------------

def jwt(claims: dict) -> str:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'RS256'})}.{b64(claims)}.c2ln"


def test_times_from_response_as_the_kubelet():
    # the server capped 72 h to 48 h: issue time = expiry - the spec's (answered) seconds
    tr = {"spec": {"expirationSeconds": 48 * H}, "status": {"expirationTimestamp": "2023-11-16T22:13:20Z"}}
    assert satoken.times_from_response(tr, requested=72 * H, now=0) == (T0, T0 + 48 * H)
    tr["status"]["expirationTimestamp"] = "2023-11-16T22:13:20.5Z"  # a MicroTime fraction is kept
    assert satoken.times_from_response(tr, requested=72 * H, now=0) == (T0 + 0.5, T0 + 48 * H + 0.5)
    # no timestamp: now and the requested lifetime
    assert satoken.times_from_response({"status": {}}, requested=600, now=T0) == (T0, T0 + 600)
    assert satoken.times_from_response({"status": {"expirationTimestamp": "garbage"}}, requested=600,
                                       now=T0) == (T0, T0 + 600)


def test_times_from_jwt():
    assert satoken.times_from_jwt(jwt({"iat": 100, "exp": 700})) == (100.0, 700.0)
    assert satoken.times_from_jwt("not-a-jwt") is None
    assert satoken.times_from_jwt("a.!!!.c") is None
    assert satoken.times_from_jwt(jwt({"iat": "x", "exp": 700})) is None
    assert satoken.times_from_jwt(jwt({"exp": 700})) is None


def test_token_times_record_then_jwt_fallback(tmp_path):
    pod_dir = str(tmp_path)
    assert satoken.token_times(pod_dir) is None
    (tmp_path / "serviceaccount").mkdir()
    (tmp_path / "serviceaccount" / "token").write_text(jwt({"iat": 100, "exp": 700}))
    assert satoken.token_times(pod_dir) == (100.0, 700.0)  # written by an agent that kept no record
    satoken._save_record(pod_dir, issued_at=5.0, expires_at=605.0)
    assert satoken.token_times(pod_dir) == (5.0, 605.0)
    assert not os.path.exists(tmp_path / "serviceaccount" / satoken.RECORD)  # not in the mounted dir
    (tmp_path / satoken.RECORD).write_text("{broken")
    assert satoken.token_times(pod_dir) == (100.0, 700.0)


# ---- refresh with a fake API client ----------------------------------------------------

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": {"serviceAccountName": "bot"}}


class FakeApi:
    path = staticmethod(ApiClient.path)

    def __init__(self, *, fail: Exception | None = None, now: float = T0) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.fail, self.now = fail, now

    async def request(self, method: str, path: str, *, json_body=None, **kw) -> dict:
        self.calls.append((method, path, json_body))
        if self.fail is not None:
            raise self.fail
        ttl = json_body["spec"]["expirationSeconds"]
        exp = self.now + ttl
        return {"spec": {**json_body["spec"]},
                "status": {"token": jwt({"iat": self.now, "exp": exp, "n": len(self.calls)}),
                           "expirationTimestamp": satoken.time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       satoken.time.gmtime(exp))}}


def pod_with_token(tmp_path, *, issued_at: float, ttl: float, mode: int = 0o600) -> str:
    d = tmp_path / "serviceaccount"
    d.mkdir()
    (d / "token").write_text("old-token")
    os.chmod(d / "token", mode)
    satoken._save_record(str(tmp_path), issued_at=issued_at, expires_at=issued_at + ttl)
    return str(d / "token")


async def test_refresh_only_when_required(tmp_path):
    path = pod_with_token(tmp_path, issued_at=T0, ttl=48 * H, mode=0o640)
    api = FakeApi(now=T0 + 25 * H)
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 23 * H) is False
    assert api.calls == [] and open(path).read() == "old-token"
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 25 * H) is True
    (method, url, body), = api.calls
    assert (method, url) == ("POST", "/api/v1/namespaces/ns/serviceaccounts/bot/token")
    assert body["spec"]["expirationSeconds"] == 48 * H
    assert body["spec"]["boundObjectRef"] == {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"}
    new = open(path).read()
    assert new != "old-token" and satoken.times_from_jwt(new) == (T0 + 25 * H, T0 + 73 * H)
    assert os.stat(path).st_mode & 0o777 == 0o640  # the file keeps its mode
    assert satoken.token_times(str(tmp_path)) == (T0 + 25 * H, T0 + 73 * H)  # the record follows
    assert sorted(os.listdir(tmp_path / "serviceaccount")) == ["token"]  # no temporary left
    # the new token is fresh: the next check does nothing
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 26 * H) is False
    assert len(api.calls) == 1


async def test_refresh_without_record_uses_the_tokens_claims(tmp_path):
    d = tmp_path / "serviceaccount"
    d.mkdir()
    (d / "token").write_text(jwt({"iat": T0, "exp": T0 + 600}))
    api = FakeApi(now=T0 + 500)
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 400) is False  # 67%
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 500) is True   # 83%
    unreadable = tmp_path / "other"
    (unreadable / "serviceaccount").mkdir(parents=True)
    (unreadable / "serviceaccount" / "token").write_text("opaque")  # age unknown: refresh
    assert await satoken.refresh(api, POD, str(unreadable), now=T0) is True


@pytest.mark.parametrize("error", [
    ApiError({"code": 403, "reason": "Forbidden", "message": "no"}),
    ApiError({"code": 409, "reason": "Conflict", "message": "the pod was recreated"}),
    httpx.ConnectError("connection refused"),
    KeyError("status"),
])
async def test_refresh_failure_keeps_the_token_and_does_not_raise(tmp_path, error, caplog):
    path = pod_with_token(tmp_path, issued_at=T0, ttl=600)
    api = FakeApi(fail=error)
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 590) is False
    assert open(path).read() == "old-token"
    assert satoken.token_times(str(tmp_path)) == (T0, T0 + 600)
    assert "refresh failed" in caplog.text
    api.fail = None  # the next check retries
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0 + 650) is True


async def test_refresh_skips_pods_without_files_or_opted_out(tmp_path):
    api = FakeApi()
    assert await satoken.refresh(api, POD, str(tmp_path), now=T0) is False
    pod_with_token(tmp_path, issued_at=T0, ttl=600)
    opted_out = {**POD, "spec": {"automountServiceAccountToken": False}}
    assert await satoken.refresh(api, opted_out, str(tmp_path), now=T0 + 590) is False
    assert api.calls == []


def test_write_is_atomic_and_keeps_readers(tmp_path):
    path = str(tmp_path / "token")
    satoken._write(path, b"first", 0o600)
    with open(path) as reader:  # a client mid-read keeps the whole old file
        (tmp_path / ".token.tmp").write_text("stale leftover")
        os.chmod(tmp_path / ".token.tmp", 0o666)
        satoken._write(path, b"second", 0o600)
        assert reader.read() == "first"
    assert open(path).read() == "second"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["token"]


# ---- the pod worker's hook ----------------------------------------------------------------

async def test_pod_worker_checks_at_most_every_interval_and_survives_errors(tmp_path, monkeypatch, caplog):
    from kubelab.nodeagent import agent as agent_mod

    class Cfg:
        pods_dir = str(tmp_path)

    class Agent:
        cfg, client = Cfg(), object()

    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    w = agent_mod.PodWorker(Agent(), pod)
    w.sandbox = object()  # running
    calls = []

    async def boom(client, pod, pod_dir, *, now):
        calls.append(now)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(satoken, "refresh", boom)
    assert w.token_check_at > 0       # a new pod: not at once, the token was just written
    assert agent_mod.PodWorker(Agent(), pod, sb=object()).token_check_at == 0.0  # re-adopted: at once
    w.token_check_at = 0.0
    now = 1000.0
    await w.refresh_token(now)        # raises inside, logged, not propagated
    await w.refresh_token(now + satoken.CHECK_INTERVAL - 1)  # within the interval: no second check
    assert calls == [now]
    assert "token check failed" in caplog.text
    now += satoken.CHECK_INTERVAL
    await w.refresh_token(now)
    assert calls == [1000.0, now]
    w.gone = True                     # a deleted pod is not refreshed
    await w.refresh_token(now + satoken.CHECK_INTERVAL)
    assert len(calls) == 2


# ---- the client's side: re-reading the token file ------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def echo_client(auth: FileTokenAuth, *, status: int = 200) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"auth": request.headers.get("Authorization")})
    return httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(handler), auth=auth)


def replace(path, text: str) -> None:
    tmp = str(path) + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


async def test_file_token_is_re_read_when_the_file_changes(tmp_path):
    f = tmp_path / "token"
    f.write_text("tok-1\n")
    conn = Connection(server="http://api", token="tok-1", token_file=str(f))
    clock = Clock()
    auth = FileTokenAuth(conn, clock=clock)
    async with echo_client(auth) as h:
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-1"
        replace(f, "tok-2")                      # the node agent's rotation: a new inode
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-2"
        assert conn.token == "tok-2"             # kept on the connection, for exec's websocket
        st = os.stat(f)
        f.write_text("tok-3")                    # in place, same size, and the same mtime
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-2"  # unseen by stat ...
        clock.t += auth.period
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-3"  # ... until the periodic re-read
        f.write_text("")                         # a bad file keeps the last good token
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-3"
        f.unlink()
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-3"
        f.write_text("tok-four")
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-four"
        r = await h.get("/x", headers={"Authorization": "Bearer explicit"})
        assert r.json()["auth"] == "Bearer explicit"  # an explicit header wins, as in client-go


async def test_a_401_forces_a_re_read(tmp_path):
    f = tmp_path / "token"
    f.write_text("tok-1")
    auth = FileTokenAuth(Connection(server="http://api", token_file=str(f)), clock=Clock())
    async with echo_client(auth, status=401) as h:
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-1"
        st = os.stat(f)
        f.write_text("tok-2")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # invisible to stat
        assert (await h.get("/x")).json()["auth"] == "Bearer tok-2"  # re-read after the 401


async def test_api_client_uses_the_file(tmp_path):
    f = tmp_path / "token"
    f.write_text("tok-1")
    client = ApiClient(connection=Connection(server="http://127.0.0.1:1", token_file=str(f)))
    try:
        assert "Authorization" not in client._http.headers  # per request, from the file
        assert client.bearer_token() == "tok-1"
        replace(f, "tok-2")
        assert client.bearer_token() == "tok-2"
    finally:
        await client.aclose()
    fixed = ApiClient(connection=Connection(server="http://127.0.0.1:1", token="abc"))
    try:
        assert fixed.token_auth is None and fixed._http.headers["Authorization"] == "Bearer abc"
        assert fixed.bearer_token() == "abc"
    finally:
        await fixed.aclose()


def kubeconfig(tmp_path, user: dict) -> str:
    import yaml
    p = tmp_path / "config"
    p.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}], "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    return str(p)


def test_kubeconfig_token_file(tmp_path):
    (tmp_path / "tok").write_text("from-file\n")
    conn = load(kubeconfig(tmp_path, {"tokenFile": "tok"}))  # relative to the kubeconfig
    assert conn.token_file == str(tmp_path / "tok") and conn.token == "from-file"
    conn = load(kubeconfig(tmp_path, {"token": "inline", "tokenFile": "tok"}))
    assert conn.token == "from-file"  # the file's value wins (client-go)
    conn = load(kubeconfig(tmp_path, {"token": "inline", "tokenFile": "missing"}))
    assert conn.token == "inline" and conn.token_file == str(tmp_path / "missing")
    with pytest.raises(KubeconfigError, match="tokenFile"):
        load(kubeconfig(tmp_path, {"tokenFile": "missing"}))
    assert load(kubeconfig(tmp_path, {"token": "inline"})).token_file is None


def test_in_cluster_remembers_the_token_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_cluster(sa_dir=str(tmp_path)).token_file is None
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "ca.crt").write_text("x")
    conn = in_cluster(sa_dir=str(tmp_path))
    assert (conn.server, conn.token, conn.token_file) == ("https://10.96.0.1:443", "tok", str(tmp_path / "token"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert in_cluster(sa_dir=str(tmp_path)) is None
