"""A threaded server (the standard library's): install() before serving; sessions see the
server and its live handler threads."""

import http.server
import socketserver

import manhole_ssh


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")


server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
manhole_ssh.install(port=0, locals={"server": server})
server.serve_forever()
