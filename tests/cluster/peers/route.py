#!/usr/bin/env python3
"""One owner for external.metrics.k8s.io with two adapters behind it.

(metrics.k8s.io, the resource metrics API, comes through here too and goes to
prometheus-adapter, which serves it from the kubelet's cAdvisor on a cluster with the real node.)

Only one APIService can own the group, and both prometheus-adapter and KEDA's adapter serve
it. This TLS proxy sits where the aggregation layer sends the group's requests and routes each
by metric name: KEDA names its metrics `s<trigger>-<scaler>` (`s0-prometheus`), everything else
goes to prometheus-adapter, which also answers discovery. It forwards the aggregator's identity
headers with the front-proxy client certificate, so each adapter authorizes the real caller.

usage: route.py PORT CERT KEY CLIENT_CERT CLIENT_KEY PROMETHEUS_ADAPTER_PORT KEDA_ADAPTER_PORT
"""
import http.client
import http.server
import re
import ssl
import sys

KEDA_METRIC = re.compile(r"^/apis/external\.metrics\.k8s\.io/v1beta1/namespaces/[^/]+/s\d+-")
FORWARDED = ("accept", "accept-encoding", "content-type", "user-agent", "x-remote-user",
             "x-remote-group", "audit-id")


def main():
    port, cert, key, client_cert, client_key, adapter_port, keda_port = sys.argv[1:8]
    upstream = ssl.create_default_context()
    upstream.check_hostname = False
    upstream.verify_mode = ssl.CERT_NONE
    upstream.load_cert_chain(client_cert, client_key)

    class Route(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            backend = keda_port if KEDA_METRIC.match(self.path) else adapter_port
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in FORWARDED or k.lower().startswith("x-remote-extra-")}
            groups = self.headers.get_all("X-Remote-Group") or []
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", int(backend), context=upstream,
                                                   timeout=30)
                conn.putrequest("GET", self.path, skip_accept_encoding=True)
                for k, v in headers.items():
                    if k.lower() != "x-remote-group":
                        conn.putheader(k, v)
                for g in groups:
                    conn.putheader("X-Remote-Group", g)
                conn.endheaders()
                resp = conn.getresponse()
                body = resp.read()
            except OSError as e:
                self.send_error(502, f"adapter on port {backend}: {e}")
                return
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            conn.close()

        def log_message(self, fmt, *args):
            sys.stderr.write("%s\n" % (fmt % args))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Route)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
