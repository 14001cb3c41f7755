"""gRPC backends for the proxyless end-to-end test: each answers a generic unary method with the
cluster and zone it stands for, so a client can see which locality served it.

    backend.py CLUSTER:REGION:ZONE:IP[,IP...] ...

One server per cluster, listening on each of its loopback IPs on one port (picked on the first
IP). Once every server is up it prints one JSON line, {"<cluster>": <port>, ...}, and serves
until stdin closes (the test holds the pipe; a killed test takes its backends with it).
"""

import json
import sys
from concurrent import futures

import grpc

# `/greeter.Greeter/SayHello`; requests and responses are raw bytes, so no protobuf is needed.
SERVICE = "greeter.Greeter"
METHOD = "SayHello"


def serve(cluster, region, zone, ips):
    body = f"cluster={cluster} region={region} zone={zone}\n".encode()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {METHOD: grpc.unary_unary_rpc_method_handler(lambda request, context: body)},
    )
    # Without SO_REUSEPORT a port clash fails loudly instead of splitting traffic.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
    )
    server.add_generic_rpc_handlers((handler,))
    port = 0
    for ip in ips:
        bound = server.add_insecure_port(f"{ip}:{port}")
        if bound == 0:
            raise SystemExit(f"cannot listen on {ip}:{port}")
        port = bound
    server.start()
    return server, port


def main(specs):
    servers, ports = [], {}
    for spec in specs:
        cluster, region, zone, ips = spec.split(":")
        server, port = serve(cluster, region, zone, ips.split(","))
        servers.append(server)
        ports[cluster] = port
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    for server in servers:
        server.stop(grace=None)


if __name__ == "__main__":
    main(sys.argv[1:])
