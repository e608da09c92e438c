"""TokenRequest (serviceaccounts/NAME/token): the pure handler and the node authorizer rule."""

from __future__ import annotations

import pytest

from kubelab.apiserver import tokenrequest as tr
from kubelab.apiserver.authz import ALLOW, Attributes, node_authorize
from kubelab.apiserver.rbac import UserInfo
from kubelab.apiserver.status import StatusError
from kubelab.pki import ca as pki
from kubelab.pki import tokens

KEY = pki.new_key("rsa")
SA = {"metadata": {"name": "builder", "namespace": "dev", "uid": "sa-uid-1"}}
NOW = 1_800_000_000


def issue(body: dict, **kw) -> dict:
    return tr.build_response(body, account=SA, key=KEY, now=NOW, **kw)


def test_default_request_gives_a_token_verifiable_as_the_account():
    out = issue({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert out["kind"] == "TokenRequest" and out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["spec"]["expirationSeconds"] == 3600
    claims = tokens.verify(out["status"]["token"], KEY.public_key(), now=NOW)
    assert tokens.service_account_of(claims) == ("dev", "builder", "sa-uid-1")
    assert claims["exp"] == NOW + 3600 and claims["aud"] == [tokens.DEFAULT_AUDIENCE]
    assert out["status"]["expirationTimestamp"] == "2027-01-15T09:00:00Z"


def test_audiences_expiration_and_cap():
    out = issue({"spec": {"audiences": ["vault"], "expirationSeconds": 7200}})
    claims = tokens.verify(out["status"]["token"], KEY.public_key(), now=NOW)
    assert claims["aud"] == ["vault"] and claims["exp"] == NOW + 7200
    assert issue({"spec": {"expirationSeconds": 10 ** 9}})["spec"]["expirationSeconds"] == tr.MAX_EXPIRATION


@pytest.mark.parametrize("body, code", [
    ({"spec": {"expirationSeconds": 60}}, 422),
    ({"spec": {"expirationSeconds": "3600"}}, 422),
    ({"spec": {"expirationSeconds": True}}, 422),
    ({"spec": {"audiences": "x"}}, 422),
    ({"spec": {"audiences": [""]}}, 422),
    ({"spec": {"boundObjectRef": {"kind": "Deployment", "name": "d"}}}, 422),
    ({"spec": "nope"}, 400),
    ({"kind": "Pod", "spec": {}}, 400),
])
def test_bad_requests_are_status_errors(body, code):
    with pytest.raises(StatusError) as e:
        issue(body)
    assert e.value.code == code


def test_bound_to_a_pod_carries_its_uid_and_checks_it():
    pod = {"metadata": {"name": "web-1", "uid": "pod-uid-9"}}
    out = issue({"spec": {"boundObjectRef": {"kind": "Pod", "name": "web-1"}}}, bound=pod)
    claims = tokens.verify(out["status"]["token"], KEY.public_key(), now=NOW)
    assert claims["kubernetes.io"]["pod"] == {"name": "web-1", "uid": "pod-uid-9"}
    assert out["spec"]["boundObjectRef"]["uid"] == "pod-uid-9"
    with pytest.raises(StatusError) as e:
        issue({"spec": {"boundObjectRef": {"kind": "Pod", "name": "web-1", "uid": "old"}}}, bound=pod)
    assert e.value.code == 409


async def test_signer_without_private_key_is_not_served(tmp_path):
    pub = tmp_path / "sa.pub"
    pub.write_bytes(pki.public_pem(KEY))
    assert tr.load_signing_key(str(pub)) is None
    assert tr.load_signing_key(None) is None

    async def get_object(plural, ns, name):
        return SA
    with pytest.raises(StatusError) as e:
        await tr.Signer.from_security({"service_account_key_file": str(pub)}).issue(
            {}, namespace="dev", name="builder", get_object=get_object)
    assert e.value.code == 404 and "--service-account-key-file" in e.value.message

    priv = tmp_path / "sa.key"
    pki.write_key(str(priv), KEY)
    signer = tr.Signer.from_security({"service_account_key_file": str(priv), "service_account_issuer": "https://x"})
    out = await signer.issue({}, namespace="dev", name="builder", get_object=get_object)
    assert tokens.verify(out["status"]["token"], KEY.public_key(), issuers=("https://x",))["iss"] == "https://x"


class Graph:
    def __init__(self, pods):
        self.pods = pods

    async def pod(self, ns, name):
        return None

    async def pods_on_node(self, node):
        return [p for p in self.pods if p["spec"]["nodeName"] == node]


async def test_node_may_request_tokens_only_for_its_pods_accounts():
    graph = Graph([{"metadata": {"namespace": "dev", "name": "p"}, "spec": {"nodeName": "n1",
                                                                          "serviceAccountName": "builder"}}])
    node = UserInfo("system:node:n1", ("system:nodes",))
    other = UserInfo("system:node:n2", ("system:nodes",))

    def attrs(user, ns="dev", name="builder"):
        return Attributes(user, "create", resource="serviceaccounts", subresource="token", namespace=ns, name=name)
    assert (await node_authorize(attrs(node), graph)).verdict == ALLOW
    assert (await node_authorize(attrs(other), graph)).verdict != ALLOW
    assert (await node_authorize(attrs(node, name="admin-sa"), graph)).verdict != ALLOW
    assert (await node_authorize(attrs(node, ns="prod"), graph)).verdict != ALLOW
