"""A proxyless gRPC client: grpcio's own xDS resolver and load balancing, no Envoy.

    GRPC_XDS_BOOTSTRAP=bootstrap.json client.py xds:///greeter.demo.global:9090

It waits until the channel can serve a call, prints {"ready": true}, then for each number N read
from stdin makes N unary calls on the same channel and prints one JSON line:
{"ok": .., "failed": .., "zones": {zone: n}, "clusters": {cluster: n}, "errors": [..]}.
Keeping one channel open is the point: configuration changes must reach it live.
"""

import json
import os
import sys

import grpc

METHOD = "/greeter.Greeter/SayHello"
# Calls in flight at once.
WINDOW = 16
CALL_TIMEOUT_S = 5
READY_TIMEOUT_S = 20


def identity(body):
    fields = dict(kv.split("=", 1) for kv in body.decode().split())
    return fields["cluster"], fields["zone"]


def send(call, count):
    tally = {"ok": 0, "failed": 0, "zones": {}, "clusters": {}, "errors": []}
    done = 0
    while done < count:
        size = min(WINDOW, count - done)
        batch = [call.future(b"", timeout=CALL_TIMEOUT_S) for _ in range(size)]
        for pending in batch:
            try:
                cluster, zone = identity(pending.result())
            except grpc.RpcError as error:
                tally["failed"] += 1
                message = f"{error.code().name}: {error.details()}"
                if message not in tally["errors"] and len(tally["errors"]) < 5:
                    tally["errors"].append(message)
                continue
            tally["ok"] += 1
            tally["zones"][zone] = tally["zones"].get(zone, 0) + 1
            tally["clusters"][cluster] = tally["clusters"].get(cluster, 0) + 1
        done += len(batch)
    return tally


def main(target):
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary(METHOD)
    try:
        # Resolution over xDS, then a connection: the first call may wait for both.
        call(b"", timeout=READY_TIMEOUT_S, wait_for_ready=True)
    except grpc.RpcError as error:
        failure = f"{error.code().name}: {error.details()}"
        print(json.dumps({"ready": False, "error": failure}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(send(call, int(line))), flush=True)
    channel.close()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: grpcio's threads can hang the interpreter's shutdown.
    os._exit(code)
