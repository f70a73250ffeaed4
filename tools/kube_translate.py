"""What `make kube-play` hands to `podman kube play`: an overlay's rendered resources with
the kinds podman 4.3 lacks translated and the rest set aside, and nothing else changed.

- Deployments and ConfigMaps are played as they are, but for a Deployment's replicas: one
  pod (podman 4.3 starts a Deployment's one pod once per replica, and the second start
  fails on the ports the first holds).
- A StatefulSet becomes its pods, `<name>-<ordinal>` for each replica, each with the labels
  the StatefulSet controller gives it (`apps.kubernetes.io/pod-index`,
  `statefulset.kubernetes.io/pod-name`), and its volumeClaimTemplates become
  PersistentVolumeClaims `<claim>-<name>-<ordinal>` (podman makes a named volume of each).
- A Seldon `Server` (a CRD, run by Seldon's operator) becomes one pod of its `podSpec`,
  with what the operator and its agent add: the serving image under its local name, the
  `Model`'s artifact (its `storageUri`, copied to the host as the agent's rclone copies
  it) mounted read-only as the model repository's `recsys` folder.
- Services are not played: an in-cluster address `<service>.<namespace>.svc:<port>` that a
  container's environment names becomes a host alias to the IP of a pod the Service
  selects (its workloads are played first); the Service's port must be the container's.
- What podman 4.3 (Debian bookworm's) gets wrong in a pod spec: a `secret` volume crashes
  `kube play` (a nil secrets manager), so it becomes a hostPath folder holding the Secret's
  keys as files (what the kubelet mounts); so does a `configMap` volume, whose files podman
  writes root-owned with mode 0600 (unreadable by the pod's user); an `httpGet` probe
  becomes a healthcheck running `curl` (the images carry none) on port 0 for a named port,
  so it becomes the exec probe the images' own HEALTHCHECK runs
  (`python3 -m recsys.cli.probe URL`, same path and port);
  `$(VAR)` in a command is not expanded, so it is expanded here from the container's
  environment where that is known before the pod runs (values, a fieldRef to the pod's name
  or labels), as the kubelet does.
- HorizontalPodAutoscalers, PodDisruptionBudgets, NetworkPolicies, RBAC, the Namespace and
  the other custom resources are listed as not checked.

Every container port is published on 127.0.0.1 (a free host port each), so the host checks
the system from outside the pods without reaching into their network; Secrets are only
collected (names and keys): the caller creates them with local values.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

PLAYED = {"Deployment", "ConfigMap"}
TRANSLATED = {"StatefulSet", "Server"}
NOT_CHECKED = {
    "HorizontalPodAutoscaler": "no autoscaler: each Deployment runs one pod",
    "PodDisruptionBudget": "no evictions on one machine",
    "NetworkPolicy": "podman's network lets every pod reach every other one",
    "Namespace": "one podman network instead",
    "ServiceAccount": "no API server, no RBAC",
    "Role": "no API server, no RBAC",
    "RoleBinding": "no API server, no RBAC",
    "Service": "replaced by host aliases to the selected pods' IPs",
    "Model": "its artifact is mounted into the Server's pod (the agent's job)",
    "Experiment": "no Seldon mesh",
}
SERVICE_ADDRESS = re.compile(r"\b([a-z0-9-]+)\.([a-z0-9-]+)\.svc\b")
MODEL_REPOSITORY = "/opt/recsys/model_repository"


@dataclass
class Translation:
    config_maps: list[dict]
    backends: list[dict]
    """Workloads behind the Services other pods address: played first."""
    workloads: list[dict]
    """The other workloads (and volume claims), played once the backends have IPs."""
    service_targets: dict[str, dict]
    """`<service>.<namespace>.svc` -> the pod labels its Service selects."""
    secrets: dict[str, set[str]] = field(default_factory=dict)
    """Secret name -> the keys the workloads read."""
    published: dict[tuple[str, str], int] = field(default_factory=dict)
    """(pod or Deployment name, port name) -> its host port on 127.0.0.1."""
    not_checked: list[str] = field(default_factory=list)
    translated: list[str] = field(default_factory=list)
    mounted_config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    """ConfigMap name -> its data, for the ConfigMaps mounted as volumes."""


def translate(resources: list[dict], images: dict[str, str], model_folder: str,
              secrets_folder: str, host_port: Callable[[], int],
              server_replicas: int = 1) -> Translation:
    """`images`: image name as rendered -> the local image to run instead; `model_folder`:
    the host folder holding the `Model`'s artifact; `secrets_folder`: where the caller
    writes each mounted Secret's keys (`<folder>/<secret>/<key>`) and each mounted
    ConfigMap's (`<folder>/configmap-<name>/<key>`, Translation.mounted_config_maps);
    `host_port`: a free port each call."""
    by_kind: dict[str, list[dict]] = {}
    for resource in copy.deepcopy(resources):
        by_kind.setdefault(resource["kind"], []).append(resource)
    result = Translation(config_maps=by_kind.get("ConfigMap", []), backends=[], workloads=[],
                         service_targets={})
    workloads: list[dict] = list(by_kind.get("Deployment", []))
    for deployment in workloads:
        if deployment["spec"].get("replicas", 1) != 1:
            result.translated.append(f"Deployment {deployment['metadata']['name']}: 1 "
                                     f"replica of {deployment['spec']['replicas']}")
            deployment["spec"]["replicas"] = 1
    for stateful in by_kind.get("StatefulSet", []):
        pods, claims = stateful_pods(stateful)
        workloads += claims + pods
        result.translated.append(
            f"StatefulSet {stateful['metadata']['name']}: {len(pods)} Pods "
            f"({', '.join(p['metadata']['name'] for p in pods)})"
            + (f" and {len(claims)} PersistentVolumeClaims" if claims else ""))
    models = by_kind.get("Model", [])
    for server in by_kind.get("Server", []):
        pod = server_pod(server, models, model_folder, server_replicas)
        workloads.append(pod)
        result.translated.append(
            f"Seldon Server {server['metadata']['name']}: Pod {pod['metadata']['name']} of its "
            f"podSpec, the Model's artifact mounted at {MODEL_REPOSITORY}/recsys")
    for kind, found in sorted(by_kind.items()):
        if kind in PLAYED or kind in TRANSLATED or kind == "Secret":
            continue
        reason = NOT_CHECKED.get(kind, "a kind podman does not play")
        result.not_checked += [f"{kind} {r['metadata']['name']}: {reason}" for r in found]
    for workload in workloads:
        spec = _pod_spec(workload)
        if spec is None:
            continue
        for container in spec["containers"]:
            for rendered, local in images.items():
                if container["image"] == rendered:
                    container["image"] = local
                    result.translated.append(f"image {rendered} -> {local}")
            _publish(container, _name(workload), host_port, result.published)
            _expand_variables(container, _pod_labels(workload), _name(workload))
            for probe in ("readinessProbe", "livenessProbe"):
                if "httpGet" in container.get(probe, {}):
                    container[probe] = exec_probe(spec, container, container[probe])
                    result.translated.append("httpGet probes -> exec probes running "
                                             "python3 -m recsys.cli.probe URL")
        _collect_secrets(spec, result.secrets)
        if _secret_volumes_as_folders(spec, secrets_folder):
            result.translated.append("secret volumes -> hostPath folders of their keys")
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                name = volume.pop("configMap")["name"]
                volume["hostPath"] = {"path": f"{secrets_folder}/configmap-{name}",
                                      "type": "Directory"}
                result.mounted_config_maps[name] = next(
                    c["data"] for c in result.config_maps if c["metadata"]["name"] == name)
                result.translated.append("configMap volumes -> hostPath folders of their "
                                         "keys (podman 4.3 writes them 0600 as root)")
    services = {f"{s['metadata']['name']}.{s['metadata'].get('namespace', 'default')}.svc": s
                for s in by_kind.get("Service", [])}
    addressed = {f"{m.group(1)}.{m.group(2)}.svc" for w in workloads
                 for m in SERVICE_ADDRESS.finditer(str(_pod_spec(w) or ""))}
    for address in sorted(addressed):
        if address not in services:
            raise ValueError(f"{address} names no Service of the overlay")
        selector = services[address]["spec"]["selector"]
        result.service_targets[address] = selector
        _check_same_ports(services[address], workloads)
    claims = [w for w in workloads if w["kind"] == "PersistentVolumeClaim"]
    for workload in workloads:
        if workload["kind"] == "PersistentVolumeClaim":
            continue
        labels = _pod_labels(workload)
        is_backend = any(_selects(selector, labels)
                         for selector in result.service_targets.values())
        mounted = {v["persistentVolumeClaim"]["claimName"]
                   for v in (_pod_spec(workload) or {}).get("volumes", [])
                   if "persistentVolumeClaim" in v}
        (result.backends if is_backend else result.workloads).extend(
            [c for c in claims if c["metadata"]["name"] in mounted] + [workload])
    result.translated = sorted(set(result.translated))
    return result


def stateful_pods(stateful: dict) -> tuple[list[dict], list[dict]]:
    """The pods and volume claims a StatefulSet's controller makes."""
    name = stateful["metadata"]["name"]
    spec = stateful["spec"]
    pods, claims = [], []
    for ordinal in range(spec.get("replicas", 1)):
        pod_name = f"{name}-{ordinal}"
        template = copy.deepcopy(spec["template"])
        labels = {**template["metadata"].get("labels", {}),
                  "apps.kubernetes.io/pod-index": str(ordinal),
                  "statefulset.kubernetes.io/pod-name": pod_name}
        pod_spec = template["spec"]
        for claim in spec.get("volumeClaimTemplates", []):
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": claim_name},
                           "spec": copy.deepcopy(claim["spec"])})
            pod_spec.setdefault("volumes", []).append(
                {"name": claim["metadata"]["name"],
                 "persistentVolumeClaim": {"claimName": claim_name}})
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": pod_name, "labels": labels},
                     "spec": pod_spec})
    return pods, claims


def server_pod(server: dict, models: list[dict], model_folder: str, replicas: int) -> dict:
    """One pod of a Seldon Server: its podSpec, the label Seldon gives its pods, and the
    folder of the Model scheduled on it as the model repository's `recsys` model."""
    name = server["metadata"]["name"]
    scheduled = [m for m in models if m["spec"].get("server") == name]
    if len(scheduled) != 1:
        raise ValueError(f"Server {name}: {len(scheduled)} Models scheduled on it, need one")
    if replicas != 1:
        raise ValueError("one Server pod: the host checks one serving replica")
    spec = copy.deepcopy(server["spec"]["podSpec"])
    spec.setdefault("volumes", []).append(
        {"name": "model", "hostPath": {"path": model_folder, "type": "Directory"}})
    for container in spec["containers"]:
        container.setdefault("volumeMounts", []).append(
            {"name": "model", "mountPath": f"{MODEL_REPOSITORY}/recsys", "readOnly": True})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-0",
                         "labels": {"seldon-server-name": name,
                                    "app.kubernetes.io/part-of": "recsys"}},
            "spec": spec}


def model_storage_uri(resources: list[dict]) -> str:
    """The storageUri of the overlay's one Model (what Seldon's agent copies)."""
    models = [r for r in resources if r["kind"] == "Model"]
    if len(models) != 1:
        raise ValueError(f"{len(models)} Models in the overlay, need one")
    return models[0]["spec"]["storageUri"]


def with_host_aliases(workload: dict, aliases: dict[str, str]) -> dict:
    """The workload with `hostname -> IP` entries in its pods' /etc/hosts."""
    result = copy.deepcopy(workload)
    spec = _pod_spec(result)
    if spec is not None and aliases:
        by_ip: dict[str, list[str]] = {}
        for hostname, ip in sorted(aliases.items()):
            by_ip.setdefault(ip, []).append(hostname)
        spec["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in by_ip.items()]
    return result


def with_env(workload: dict, extra: dict[str, str], when: str) -> dict:
    """The workload with `extra` set in every container whose environment has `when`."""
    result = copy.deepcopy(workload)
    spec = _pod_spec(result)
    for container in (spec or {}).get("containers", []):
        env = container.setdefault("env", [])
        if any(e["name"] == when for e in env):
            names = {e["name"] for e in env}
            env += [{"name": k, "value": v} for k, v in extra.items() if k not in names]
    return result


def container_port(spec: dict, container: dict, port) -> int:
    """A probe's or Service's port (a number, or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    for entry in container.get("ports", []):
        if entry.get("name") == port:
            return entry["containerPort"]
    raise ValueError(f"container {container['name']} has no port named {port!r}")


def pod_specs(workloads: list[dict]) -> list[tuple[str, dict]]:
    return [(_name(w), spec) for w in workloads if (spec := _pod_spec(w)) is not None]


def exec_probe(spec: dict, container: dict, probe: dict) -> dict:
    """An httpGet probe as the exec probe the images' HEALTHCHECK runs."""
    result = {k: v for k, v in probe.items() if k != "httpGet"}
    get = probe["httpGet"]
    port = container_port(spec, container, get["port"])
    result["exec"] = {"command": ["python3", "-m", "recsys.cli.probe",
                                  f"http://127.0.0.1:{port}{get.get('path', '/')}"]}
    return result


def _expand_variables(container: dict, labels: dict, pod_name: str) -> None:
    """`$(NAME)` in command and args, from the env entries known before the pod runs."""
    known = {}
    for env in container.get("env", []):
        if "value" in env:
            known[env["name"]] = env["value"]
        path = env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
        if label and label.group(1) in labels:
            known[env["name"]] = labels[label.group(1)]
        elif path == "metadata.name":
            known[env["name"]] = pod_name
    for field_name in ("command", "args"):
        if field_name in container:
            container[field_name] = [
                re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                       lambda m: known.get(m.group(1), m.group(0)), part)
                for part in container[field_name]]


def _secret_volumes_as_folders(spec: dict, secrets_folder: str) -> bool:
    found = False
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            name = volume.pop("secret")["secretName"]
            volume["hostPath"] = {"path": f"{secrets_folder}/{name}", "type": "Directory"}
            found = True
    return found


def _publish(container: dict, owner: str, host_port: Callable[[], int],
             published: dict[tuple[str, str], int]) -> None:
    for entry in container.get("ports", []):
        port = host_port()
        entry["hostPort"], entry["hostIP"] = port, "127.0.0.1"
        published[(owner, entry.get("name") or str(entry["containerPort"]))] = port


def _collect_secrets(spec: dict, secrets: dict[str, set[str]]) -> None:
    """Secret keys read from env (secretKeyRef) and, for a mounted Secret, the files an env
    value names under its mount path (e.g. RECSYS_METRICS_TOKEN_FILE)."""
    mounted = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", [])
               if "secret" in v}
    for secret in mounted.values():
        secrets.setdefault(secret, set())
    for container in spec["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                secrets.setdefault(ref["name"], set()).add(ref["key"])
            for mount in container.get("volumeMounts", []):
                prefix = mount["mountPath"].rstrip("/") + "/"
                if mount["name"] in mounted and env.get("value", "").startswith(prefix):
                    secrets[mounted[mount["name"]]].add(env["value"][len(prefix):])


def _check_same_ports(service: dict, workloads: list[dict]) -> None:
    """A host alias keeps the port: each Service port must be its target's port."""
    selected = [w for w in workloads if _selects(service["spec"]["selector"], _pod_labels(w))]
    for workload in selected:
        spec = _pod_spec(workload)
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            numbers = {container_port(spec, c, target) for c in spec["containers"]
                       if isinstance(target, int)
                       or any(p.get("name") == target for p in c.get("ports", []))}
            if numbers != {port["port"]}:
                raise ValueError(f"Service {service['metadata']['name']} port {port['port']} "
                                 f"targets {sorted(numbers)} in {_name(workload)}")


def _pod_spec(workload: dict) -> dict | None:
    if workload["kind"] == "Pod":
        return workload["spec"]
    if workload["kind"] == "Deployment":
        return workload["spec"]["template"]["spec"]
    return None


def _pod_labels(workload: dict) -> dict:
    if workload["kind"] == "Pod":
        return workload["metadata"].get("labels", {})
    if workload["kind"] == "Deployment":
        return workload["spec"]["template"]["metadata"].get("labels", {})
    return {}


def _name(workload: dict) -> str:
    return workload["metadata"]["name"]


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
