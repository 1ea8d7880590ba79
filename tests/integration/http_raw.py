"""Sends one raw HTTP request (bytes as given, with \\r\\n escapes) and prints
what came back, for test_api_strict_http.sh: the first status code, how many
status lines were sent, whether the server closed the connection within the
wait, and the body of the first response. Stops after --wait seconds.
--pause-after-line sends the request line first and the rest after a pause.
--cafile speaks TLS to the server, trusting that CA (for 127.0.0.1)."""
import argparse
import json
import socket
import ssl
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--wait", type=float, default=3)
p.add_argument("--pause-after-line", type=float, default=0,
               help="seconds between the request line and the rest")
p.add_argument("--cafile", help="TLS, trusting this CA's PEM file")
p.add_argument("request")
args = p.parse_args()
data = args.request.encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", args.port))
if args.cafile:
    s = ssl.create_default_context(cafile=args.cafile).wrap_socket(s, server_hostname="127.0.0.1")
if args.pause_after_line > 0:
    line_end = data.index(b"\r\n") + 2
    s.sendall(data[:line_end])
    time.sleep(args.pause_after_line)
    data = data[line_end:]
s.sendall(data)
out, closed, deadline = b"", False, time.monotonic() + args.wait
while time.monotonic() < deadline:
    s.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    except (ConnectionResetError, ssl.SSLEOFError):
        closed = True
        break
    if not chunk:
        closed = True
        break
    out += chunk
s.close()
head, _, body = out.partition(b"\r\n\r\n")
status_lines = out.count(b"HTTP/1.1 ") + out.count(b"HTTP/1.0 ")
status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.") else 0
print(json.dumps({"status": status, "status_lines": status_lines, "closed": closed,
                  "body": body.decode("utf-8", "replace")}))
