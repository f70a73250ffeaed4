"""Which pod may open a connection to which pod's port, by the Kubernetes NetworkPolicy
rules (networking.k8s.io/v1): a pod that no policy selects for a direction is open in that
direction; once selected, a connection passes only if some rule of a selecting policy
admits it (peers: podSelector alone = the policy's namespace, namespaceSelector alone =
every pod of the matching namespaces, both = the pods matching both; no `from`/`to` = any
peer; no `ports` = every port; a named port is the destination container's). Egress must be
admitted by the source's policies and ingress by the destination's."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict = field(hash=False)
    ports: dict = field(hash=False, default_factory=dict)  # container port -> its name

    @property
    def namespace_labels(self) -> dict:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists,
    DoesNotExist) all hold; an empty selector selects everything."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        holds = {"In": key in labels and labels[key] in values,
                 "NotIn": key not in labels or labels[key] not in values,
                 "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not holds:
            return False
    return True


def _peer_matches(peer: dict, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # pods are addressed by label here, never by CIDR
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), pod.labels)


def _port_matches(rule_ports: list | None, port: int, target: Pod) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != "TCP":
            continue
        wanted = rule_port.get("port")
        if wanted is None or wanted == port or wanted == target.ports.get(port):
            return True
        if isinstance(wanted, int) and rule_port.get("endPort") and \
                wanted <= port <= rule_port["endPort"]:
            return True
    return False


def _direction_admits(policies: list[dict], kind: str, subject: Pod, peer: Pod, port: int,
                      destination: Pod) -> bool:
    selecting = [p for p in policies if p["metadata"]["namespace"] == subject.namespace
                 and selects(p["spec"]["podSelector"], subject.labels)
                 and kind in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(p, peer, policy["metadata"]["namespace"])
                                 for p in peers)) \
                    and _port_matches(rule.get("ports"), port, destination):
                return True
    return False


def admits(policies: list[dict], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `source` may open a TCP connection to `destination`'s `port`."""
    return (_direction_admits(policies, "Egress", source, destination, port, destination)
            and _direction_admits(policies, "Ingress", destination, source, port, destination))
