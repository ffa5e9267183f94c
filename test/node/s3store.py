"""A model store on this machine for pods on the real node: moto's S3 server bound to the node's
address (the pod bridge, 10.88.0.1), with authentication enforced. An IAM user with read access
is created while auth is off, then /moto-api/reset-auth turns checking on, so every later request
must carry a valid SigV4 signature from that user's key (moto recomputes it).

Each model is a bucket of its own (storageUri s3://BUCKET, a whole-bucket listing): moto 5.0.28
rejects the signature of every ListObjectsV2 with a prefix once auth is on (boto3's requests
fail the same way), so prefixes cannot be tested against it.

As a library (node-e2e's fixtures): S3Store(workdir, host, {bucket: {key: file}}).
As a command (make demo):
    python test/node/s3store.py WORKDIR HOST BUCKET/KEY=FILE...
starts moto detached, uploads the files, enables auth, and prints one JSON line:
{"pid", "url", "access_key", "secret_key"}; the caller stops it (kill pid)."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

VENV_BIN = os.path.dirname(sys.executable)


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def enforce_auth(url, iam):
    """Turns authentication on in the moto server at url: an IAM user "fetcher" with read access
    and an access key is made first (iam: a boto3 IAM client of that server), then
    /moto-api/reset-auth. Returns the key (id, secret); from then on every request must carry a
    valid SigV4 signature from it. Also used by serving-runtime/tests/storage."""
    iam.create_user(UserName="fetcher")
    iam.put_user_policy(UserName="fetcher", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName="fetcher")["AccessKey"]
    req = urllib.request.Request(url + "/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    if json.load(urllib.request.urlopen(req, timeout=10))["status"] != "ok":
        raise RuntimeError("moto refused to enforce authentication")
    return key["AccessKeyId"], key["SecretAccessKey"]


class S3Store:
    def __init__(self, workdir, host, buckets, detach=False):
        self.host = host
        self.port = free_port(host)
        self.url = "http://%s:%d" % (host, self.port)
        self.log = open(os.path.join(workdir, "moto-%d.log" % self.port), "w")
        self.proc = subprocess.Popen([os.path.join(VENV_BIN, "moto_server"), "-H", host, "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=detach)
        try:
            self._prepare(buckets)
        except BaseException:
            self.stop()  # a failed set-up leaves no moto_server behind
            raise

    def _prepare(self, buckets):
        """Waits for the server, fills the buckets, then turns authentication on."""
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("moto_server on %s did not start; see %s" % (self.url, self.log.name))
                time.sleep(0.2)
        s3 = self.client("s3")
        for bucket, files in buckets.items():
            s3.create_bucket(Bucket=bucket)
            for key, path in files.items():
                with open(path, "rb") as f:
                    s3.put_object(Bucket=bucket, Key=key, Body=f.read())
        self.access_key, self.secret_key = enforce_auth(self.url, self.client("iam"))

    def client(self, service, key="testing", secret="testing"):
        import boto3
        return boto3.client(service, endpoint_url=self.url, aws_access_key_id=key, aws_secret_access_key=secret,
                            region_name="us-east-1")

    def secret_data(self, key=None, secret=None):
        """The data of a storage Secret (storageSecretName: envFrom into the storage initializer)."""
        return {"AWS_ACCESS_KEY_ID": key or self.access_key, "AWS_SECRET_ACCESS_KEY": secret or self.secret_key,
                "AWS_ENDPOINT_URL_S3": self.url, "AWS_REGION": "us-east-1"}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: s3store.py WORKDIR HOST BUCKET/KEY=FILE...")
    buckets = {}
    for a in sys.argv[3:]:
        obj, path = a.split("=", 1)
        bucket, key = obj.split("/", 1)
        buckets.setdefault(bucket, {})[key] = path
    st = S3Store(sys.argv[1], sys.argv[2], buckets, detach=True)
    print(json.dumps({"pid": st.proc.pid, "url": st.url, "access_key": st.access_key, "secret_key": st.secret_key}))
