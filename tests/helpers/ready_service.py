"""A service that becomes ready late, by one of pidone's readiness protocols.

usage: ready_service.py DIR NAME HOW [ARG]

At once it writes DIR/NAME.started (a `time.time_ns()` stamp, like `date +%s%N`). Then it waits
1.5 s, and until the test creates DIR/NAME.go, so the test decides when it may become ready and
can look at pidone meanwhile. It writes DIR/NAME.ready, and only then becomes ready, as HOW says:

  notify_fd FD  writes a newline to fd FD (pidone's `ready = { notify_fd = FD }`)
  sd_notify     sends "READY=1" and "STATUS=serving" to $NOTIFY_SOCKET (`ready = { sd_notify =
                true }`); at once it records the variable in DIR/NAME.notify_socket and sends
                "STATUS=warming up"
  tcp PORT      starts listening on 127.0.0.1:PORT (a ready-level tcp check)
  http PORT     answers every GET on 127.0.0.1:PORT from the start: 503 until ready, 200 after
                (a ready-level http check)

Then it runs until killed: SIGTERM's default action ends it.
"""
import http.server
import os
import socket
import sys
import threading
import time


def stamp(directory, name):
    """Writes the time into DIR/NAME atomically: the test never reads half a stamp."""
    tmp = os.path.join(directory, "%s.tmp.%d" % (name, os.getpid()))
    with open(tmp, "w") as f:
        f.write("%d\n" % time.time_ns())
    os.rename(tmp, os.path.join(directory, name))


def notify(message):
    """One datagram to $NOTIFY_SOCKET; '@' at its start means an abstract address (a NUL)."""
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


class Handler(http.server.BaseHTTPRequestHandler):
    ready = False

    def do_GET(self):
        code = 200 if Handler.ready else 503
        body = b"ok\n" if Handler.ready else b"warming up\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # Keep pidone's output quiet.


def main():
    directory, name, how = sys.argv[1], sys.argv[2], sys.argv[3]
    arg = sys.argv[4] if len(sys.argv) > 4 else None
    stamp(directory, name + ".started")

    if how == "sd_notify":
        with open(os.path.join(directory, name + ".notify_socket"), "w") as f:
            f.write(os.environ.get("NOTIFY_SOCKET", ""))
        notify("STATUS=warming up")
    elif how == "http":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", int(arg)), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    time.sleep(1.5)
    while not os.path.exists(os.path.join(directory, name + ".go")):
        time.sleep(0.01)
    stamp(directory, name + ".ready")

    if how == "notify_fd":
        os.write(int(arg), b"\n")
    elif how == "sd_notify":
        notify("READY=1\nSTATUS=serving")
    elif how == "tcp":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(arg)))
        listener.listen(16)
        while True:  # Accept and hang up: a tcp check only needs the connection.
            conn, _ = listener.accept()
            conn.close()
    elif how == "http":
        Handler.ready = True
    else:
        sys.exit("unknown HOW %r" % how)

    while True:
        time.sleep(1000)


if __name__ == "__main__":
    main()
