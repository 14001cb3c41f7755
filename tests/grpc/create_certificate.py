"""Calls istio.v1.auth.IstioCertificateService/CreateCertificate over mTLS, as istio-agent does.

usage: create_certificate.py ADDR CERT_DIR|none CSR_FILE
CERT_DIR holds the caller's cert-chain.pem, key.pem and root-cert.pem ("none": no client
certificate, trusting ROOT from the environment variable ROOT_CERT). Prints JSON: the status
code name, its details, and the returned chain (PEM strings, leaf first).
"""

import json
import os
import sys

import grpc

from wire import fields, int_field, string_field


def encode_request(csr, seconds):
    # IstioCertificateRequest: csr (1), validity_duration (3).
    return string_field(1, csr) + int_field(3, seconds)


def decode_response(data):
    # IstioCertificateResponse: cert_chain (1), repeated.
    return [value.decode() for tag, value in fields(data) if tag == 1]


def main():
    addr, cert_dir, csr_file = sys.argv[1:4]
    if cert_dir == "none":
        root = open(os.environ["ROOT_CERT"], "rb").read()
        creds = grpc.ssl_channel_credentials(root_certificates=root)
    else:
        read = lambda name: open(os.path.join(cert_dir, name), "rb").read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read("root-cert.pem"),
            private_key=read("key.pem"),
            certificate_chain=read("cert-chain.pem"),
        )
    options = [("grpc.ssl_target_name_override", "istiod.istio-system.svc")]
    with grpc.secure_channel(addr, creds, options=options) as channel:
        call = channel.unary_unary(
            "/istio.v1.auth.IstioCertificateService/CreateCertificate",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            data = call(encode_request(open(csr_file).read(), 3600), timeout=10)
            print(json.dumps({"code": "OK", "details": "", "chain": decode_response(data)}))
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details(), "chain": []}))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: grpcio's threads can hang the interpreter's shutdown.
    os._exit(0)
