"""An NDS subscriber, as istio-agent's DNS proxy subscribes: one ADS stream asking for Istio's
name table (`istio.networking.nds.v1.NameTable`), every response acknowledged.

    nds.py HOST:PORT [NETWORK]

Prints one JSON line per response: {"version": ..., "table": {host: [ips]}}, and runs until
stdin closes. The messages are encoded by hand: grpcio's generic calls need no protobuf
package.
"""

import json
import os
import queue
import sys
import threading

import grpc

from wire import fields, string_field

METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
NAME_TABLE = "type.googleapis.com/istio.networking.nds.v1.NameTable"


def node(network):
    # Node: id (1), metadata (3) = Struct { fields (1): map entry { key (1), value (2):
    # Value { string_value (3) } } }.
    meta = b""
    if network:
        value = string_field(3, network)
        meta = string_field(1, string_field(1, "NETWORK") + string_field(2, value))
    return string_field(1, "sidecar~10.0.0.9~nds.demo~demo.svc.cluster.local") + string_field(
        3, meta
    )


def request(network=None, version="", nonce=""):
    out = b""
    if version:
        out += string_field(1, version)
    if network is not None:
        out += string_field(2, node(network))
    out += string_field(4, NAME_TABLE)
    if nonce:
        out += string_field(5, nonce)
    return out


def name_table(any_bytes):
    """{host: [ips]} from an Any holding a NameTable."""
    fields_of_any = dict(fields(any_bytes))
    assert fields_of_any[1].decode() == NAME_TABLE, fields_of_any[1]
    table = {}
    for tag, entry in fields(fields_of_any.get(2, b"")):
        assert tag == 1
        parts = dict(fields(entry))
        host = parts[1].decode()
        info = list(fields(parts.get(2, b"")))
        table[host] = {
            "ips": [v.decode() for t, v in info if t == 1],
            "registry": "".join(v.decode() for t, v in info if t == 2),
        }
    return table


def main(target, network):
    requests = queue.Queue()
    requests.put(request(network=network))
    done = threading.Event()

    def outgoing():
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    def close_on_eof():
        sys.stdin.read()
        done.set()
        requests.put(None)

    threading.Thread(target=close_on_eof, daemon=True).start()
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(METHOD)(outgoing())
        try:
            for response in call:
                parts = list(fields(response))
                version = "".join(v.decode() for t, v in parts if t == 1)
                nonce = "".join(v.decode() for t, v in parts if t == 5)
                type_url = "".join(v.decode() for t, v in parts if t == 4)
                resources = [v for t, v in parts if t == 2]
                assert type_url == NAME_TABLE, type_url
                table = {}
                for r in resources:
                    table.update(name_table(r))
                line = {"version": version, "resources": len(resources), "table": table}
                print(json.dumps(line), flush=True)
                requests.put(request(version=version, nonce=nonce))
        except grpc.RpcError as error:
            if not done.is_set():
                print(json.dumps({"error": error.code().name}), flush=True)
                return 1
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: grpcio's threads can hang the interpreter's shutdown.
    os._exit(code)
