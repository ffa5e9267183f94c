"""The only registry the real node's containerd knows (its hosts.toml for every registry points
here): it serves no image and answers every request with 403 and a reason that says what to do,
so a pod whose image was not imported shows ErrImagePull with that text, and no pull ever leaves
this machine. Started by cluster-up (node/up.sh) as `kinfer-registry-stub`; stdlib only.

    python3 registry_stub.py HOST PORT READY_FILE   (READY_FILE is written once it listens)"""
import http.server
import json
import sys

REASON = ("image not on this node: the local cluster pulls nothing; kinfer's images come from "
          "'make images', imported by 'make cluster-up'")


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = json.dumps({"errors": [{"code": "DENIED", "message": REASON, "detail": self.path}]}).encode()
        self.send_response(403, REASON)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, fmt, *args):
        sys.stderr.write("registry-stub: %s %s\n" % (self.command, self.path))


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    with open(sys.argv[3], "w") as f:
        f.write("%s:%s\n" % (sys.argv[1], sys.argv[2]))
    server.serve_forever()
