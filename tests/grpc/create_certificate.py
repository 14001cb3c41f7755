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


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_request(csr, seconds):
    body = csr.encode()
    return b"\x0a" + varint(len(body)) + body + b"\x18" + varint(seconds)


def decode_response(data):
    chain, i = [], 0
    while i < len(data):
        key = data[i]
        i += 1
        length, shift = 0, 0
        while True:
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key == 0x0A:
            chain.append(data[i : i + length].decode())
        i += length
    return chain


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


main()
