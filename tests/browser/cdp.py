"""Drives a headless Chromium over the DevTools protocol, for the fleet view's tests.

    cdp.py CHROMIUM URL

Starts CHROMIUM (headless, its own profile) on URL, then reads commands from stdin, one per
line, and answers each with one JSON line on stdout:
    text            the page's visible text (document.body.innerText)
    html            the page's DOM (document.documentElement.outerHTML)
    eval EXPR       the value of a JavaScript expression
    shot PATH       a PNG screenshot written to PATH
The WebSocket client is the standard library's sockets (RFC 6455, text frames only).
"""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://"), url
        host_port, path = url[5:].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("handshake closed")
            response += chunk
        head, self.buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(head.decode(errors="replace"))

    def send(self, text):
        data = text.encode()
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 65536:
            header.append(0x80 | 126)
            header += struct.pack("!H", len(data))
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", len(data))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes(header) + mask + masked)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            opcode = b0 & 0x0F
            if opcode in (0x1, 0x0, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()
            elif opcode == 0x8:
                raise RuntimeError("closed by the browser")
            # ping/pong: ignored


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply["result"]

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def main(chromium, url):
    port = free_port()
    profile = tempfile.mkdtemp(prefix="meshfleet-cdp-")
    browser = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--window-size=1400,1000",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        target = None
        while target is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                target = pages[0] if pages else None
            except OSError:
                pass
            if target is None:
                if time.time() > deadline:
                    raise RuntimeError("Chromium's DevTools never answered")
                time.sleep(0.1)
        page = Page(WebSocket(target["webSocketDebuggerUrl"]))
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "text":
                out = page.eval("document.body ? document.body.innerText : ''")
            elif command == "html":
                out = page.eval("document.documentElement.outerHTML")
            elif command == "eval":
                out = page.eval(arg)
            elif command == "shot":
                data = page.call("Page.captureScreenshot", format="png")["data"]
                with open(arg, "wb") as f:
                    f.write(base64.b64decode(data))
                out = arg
            else:
                out = {"error": f"unknown command {command!r}"}
            print(json.dumps(out), flush=True)
    finally:
        browser.kill()
        browser.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
