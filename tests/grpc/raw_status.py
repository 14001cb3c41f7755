"""Raw ADS requests that a server must refuse, and the status each one gets.

    raw_status.py HOST:PORT

Opens one StreamAggregatedResources stream per case, sends the case's bytes as the only
request message and prints one JSON line: {case: status code name}. Cases: `malformed` (bytes
that are no DiscoveryRequest: a field whose length runs past the message) and `oversized` (a
well-formed DiscoveryRequest of 5 MiB, over the server's 4 MiB default). The messages are
encoded by hand: grpcio's generic calls need no protobuf package.
"""

import json
import os
import sys

import grpc

from wire import string_field, varint

METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TIMEOUT_S = 10


def oversized():
    # DiscoveryRequest: resource_names (3) x 5,300 of 1,000 bytes, type_url (4).
    names = b"".join(string_field(3, "n" * 1000) for _ in range(5300))
    return names + string_field(4, CLUSTER)


# Field 1 (version_info), length-delimited, claiming 2^28 bytes that never come.
MALFORMED = varint(1 << 3 | 2) + varint(1 << 28) + b"x"


def status_of(channel, payload):
    call = channel.stream_stream(METHOD)
    try:
        for _ in call(iter([payload]), timeout=TIMEOUT_S):
            pass
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def main(target):
    with grpc.insecure_channel(target) as channel:
        result = {
            "malformed": status_of(channel, MALFORMED),
            "oversized": status_of(channel, oversized()),
        }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: grpcio's threads can hang the interpreter's shutdown.
    os._exit(code)
