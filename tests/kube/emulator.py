"""Kubernetes API emulators (PyPI kmock) for the kube tests: one per name given.

    python emulator.py gateway east-1 west-1 ...

Prints one JSON line {"name": "http://127.0.0.1:PORT", ...} once every emulator listens, then
reads commands from stdin, one per line, answering each with a line:

    stop NAME      the emulator stops listening (its API server is gone); its objects are kept
    start NAME     it listens again, on the same port, with the same objects
    requests NAME  the requests it has served so far, as JSON lines of method, path, query,
                   content type and body, then a line "."
    refuse NAME STATUS METHOD PATH MESSAGE...
                   requests of METHOD on PATH are answered with a Status of that code and
                   message (kmock still stores what they write: only the answer is refused)

Every write gives the object a new `metadata.resourceVersion` (kmock sets none). It ends
when stdin closes. Every resource meshfleet lists or watches is declared, so a list
of an empty one answers an empty list as an API server does (kmock answers 404 otherwise).
"""

import asyncio
import itertools
import json
import os
import sys

import aiohttp.web
import kmock

RESOURCES = [
    "v1/services",
    "v1/secrets",
    "v1/nodes",
    "v1/namespaces",
    "v1/configmaps",
    "v1/serviceaccounts",
    "v1/events",
    "apps/v1/deployments",
    "apps/v1/statefulsets",
    "apps/v1/daemonsets",
    "autoscaling/v2/horizontalpodautoscalers",
    "discovery.k8s.io/v1/endpointslices",
    "coordination.k8s.io/v1/leases",
    "multicluster.x-k8s.io/v1alpha1/serviceexports",
    "networking.istio.io/v1/destinationrules",
    "meshfleet.io/v1alpha1/clusters",
    "meshfleet.io/v1alpha1/propagationpolicies",
    "meshfleet.io/v1alpha1/clusterpropagationpolicies",
    "meshfleet.io/v1alpha1/overridepolicies",
    "meshfleet.io/v1alpha1/clusteroverridepolicies",
    "meshfleet.io/v1alpha1/resourcebindings",
    "meshfleet.io/v1alpha1/clusterresourcebindings",
    "meshfleet.io/v1alpha1/works",
]


class VersionedEmulator(kmock.KubernetesEmulator):
    """kmock's emulator, with a `metadata.resourceVersion` on every object it stores, new on
    every write, as an API server sets it (kmock 0.8 sets none, and a watcher cannot resume a
    watch without one). Nothing else is changed: conflicts are still not detected."""

    async def _handle(self, request):
        writes = (kmock.action.CREATE, kmock.action.UPDATE)
        if request.resource is not None and request.action in writes and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            if isinstance(metadata, dict):
                metadata["resourceVersion"] = str(next(VERSIONS))
        return await super()._handle(request)


VERSIONS = itertools.count(1)


class Emulator:
    def __init__(self, name):
        self.name = name
        self.handler = VersionedEmulator()
        for resource in RESOURCES:
            self.handler.resources[resource] = {}
        self.server = None
        self.port = None

    async def start(self):
        # aiohttp's low-level server around kmock's handler (what kmock.Server does, but one
        # can stop and start again alone, and stopping closes open watches at once).
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self.handler), shutdown_timeout=0.1)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", self.port or 0, reuse_address=True)
        await site.start()
        if self.port is None:
            self.port = runner.addresses[0][1]
        self.server = runner

    async def stop(self):
        if self.server is not None:
            await self.server.cleanup()
            self.server = None

    def url(self):
        return f"http://127.0.0.1:{self.port}"


def request_line(request):
    body = request.data if request.data is not None else None
    return json.dumps(
        {
            "method": str(request.method.value if hasattr(request.method, "value") else request.method),
            "path": str(request.url.path) if hasattr(request, "url") else None,
            "query": dict(request.params) if request.params is not None else {},
            "content_type": request.headers.get("Content-Type", "") if request.headers else "",
            "body": body,
        },
        default=str,
    )


async def main(names):
    emulators = {name: Emulator(name) for name in names}
    for emulator in emulators.values():
        await emulator.handler.__aenter__()
        await emulator.start()
    print(json.dumps({name: e.url() for name, e in emulators.items()}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        parts = line.decode().strip().split(" ")
        command, name = parts[0], (parts[1] if len(parts) > 1 else "")
        emulator = emulators.get(name)
        if not command:
            continue
        if emulator is None:
            print(f"error unknown emulator {name!r}", flush=True)
        elif command == "stop":
            await emulator.stop()
            print("ok", flush=True)
        elif command == "start":
            await emulator.start()
            print("ok", flush=True)
        elif command == "refuse" and len(parts) >= 6:
            # refuse NAME STATUS METHOD PATH MESSAGE...: the API server answers such requests
            # with that Status (an RBAC refusal, a field manager conflict), as kube-apiserver
            # words it.
            status, method, path, message = int(parts[2]), parts[3].lower(), parts[4], " ".join(parts[5:])
            reason = {403: "Forbidden", 409: "Conflict"}.get(status, "Failure")
            emulator.handler[f"{method} {path}"] << kmock.KubernetesError(
                status=status, reason=reason, message=message
            )
            print("ok", flush=True)
        elif command == "requests":
            for request in list(emulator.handler):
                print(request_line(request), flush=True)
            print(".", flush=True)
        else:
            print(f"error unknown command {command!r}", flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
