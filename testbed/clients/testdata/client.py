# One TLS client per line of stdin ("id host port name"), Python's ssl with
# its default context (OpenSSL underneath) and the lab roots; one line out
# per scenario: "id OK" or "id FAIL <error>".
import socket, ssl, sys

ctx = ssl.create_default_context(cafile=sys.argv[1])
for line in sys.stdin:
    sid, host, port, name = line.split()
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.settimeout(10)
            with ctx.wrap_socket(s, server_hostname=name) as ts:
                ts.sendall(b"GET / HTTP/1.0\r\n\r\n")
                out = "OK" if ts.recv(64) else "FAIL closed without a response"
    except Exception as e:  # every failure is the datum
        out = "FAIL %s: %s" % (type(e).__name__, " ".join(str(e).split()))
    print(sid, out, flush=True)
