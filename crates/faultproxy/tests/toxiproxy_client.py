"""Drives chaoslab's fault proxy with a real Toxiproxy client from PyPI
(toxiproxy-python): create a proxy in front of Redis, add a latency toxic,
see the latency through the proxy, remove it, disable/enable, reset, destroy.

Usage: toxiproxy_client.py API_PORT REDIS_HOST:PORT
"""

import socket
import statistics
import sys
import time

from toxiproxy import Toxiproxy


def ping_rtt(host, port):
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(64)
            if not chunk:
                raise RuntimeError("closed before the reply")
            reply += chunk
    assert reply == b"+PONG\r\n", reply
    return time.monotonic() - start


def median_rtt(host, port, n=5):
    return statistics.median(ping_rtt(host, port) for _ in range(n))


def main():
    api_port, upstream = int(sys.argv[1]), sys.argv[2]
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", api_port)
    assert server.running(), "API not reachable"
    print("version:", server.version())

    proxy = server.create(upstream=upstream, name="redis_py", listen="127.0.0.1:0")
    host, port = proxy.listen.rsplit(":", 1)
    port = int(port)
    base = median_rtt(host, port)

    proxy.add_toxic(type="latency", attributes={"latency": 200, "jitter": 0})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"], toxics
    assert toxics["latency_downstream"].attributes["latency"] == 200
    slow = median_rtt(host, port)
    print(f"rtt: {base * 1000:.1f} ms -> {slow * 1000:.1f} ms with latency 200 ms")
    assert slow >= 0.19, slow
    assert slow <= base + 1.0, slow

    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    after = median_rtt(host, port)
    assert after < 0.15, after

    proxy.disable()
    try:
        socket.create_connection((host, port), timeout=2).close()
        raise AssertionError("a disabled proxy still accepts")
    except ConnectionRefusedError:
        pass
    proxy.enable()
    ping_rtt(host, port)

    proxy.add_toxic(type="blackhole", name="hole")
    assert server.reset()
    assert proxy.toxics() == {}
    ping_rtt(host, port)

    assert proxy.destroy()
    assert server.get_proxy("redis_py") is None
    print("toxiproxy-python: ok")


if __name__ == "__main__":
    main()
