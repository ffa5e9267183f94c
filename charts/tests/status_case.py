#!/usr/bin/env python3
"""Turns a status case (charts/tests/status-cases/*.json) into the live object a GitOps tool sees.

It runs the controller's status computation (the test-status-dump binary, built from
controller/src/reconcile/status.c), applies the case's "after" edits (a newer generation, a deletion
timestamp, no status yet), and prints the object as JSON, or with --lua as a Lua table
constructor for the Argo CD health script. Numbers become Lua floats, as in Argo CD's gopher-lua.
"""
import json
import subprocess
import sys


def lua(v):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v))
    if isinstance(v, str):
        out = []
        for ch in v:
            if ch in '\\"':
                out.append("\\" + ch)
            elif ord(ch) < 32 or ord(ch) == 127:
                out.append("\\%03d" % ord(ch))
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(v, list):
        return "{" + ", ".join(lua(e) for e in v) + "}"
    if isinstance(v, dict):
        # JSON null members are absent in Lua, as in Argo CD.
        return "{" + ", ".join("[%s] = %s" % (lua(k), lua(e)) for k, e in v.items() if e is not None) + "}"
    raise TypeError("cannot express %r in Lua" % (v,))


def main():
    args = sys.argv[1:]
    as_lua = "--lua" in args
    args = [a for a in args if a != "--lua"]
    if len(args) != 2:
        sys.exit("usage: status_case.py STATUS_DUMP_BIN CASE.json [--lua]")
    dump, case_path = args
    with open(case_path) as f:
        case = json.load(f)
    proc = subprocess.run([dump, case_path], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("%s failed (%d): %s" % (dump, proc.returncode, proc.stderr.strip()))
    obj = json.loads(proc.stdout)
    after = case.get("after", {})
    unknown = set(after) - {"generation", "deletionTimestamp", "drop_status", "merge_status"}
    if unknown:
        sys.exit("%s: unknown keys in \"after\": %s" % (case_path, ", ".join(sorted(unknown))))
    if "generation" in after:
        obj["metadata"]["generation"] = after["generation"]
    if "deletionTimestamp" in after:
        obj["metadata"]["deletionTimestamp"] = after["deletionTimestamp"]
    # "merge_status" (what controller/src/rollout/canary.c adds after status_compute()) is merged by
    # STATUS_DUMP itself, which then runs the controller's status_rollout_conditions() on it.
    if after.get("drop_status"):
        obj.pop("status", None)
    print(lua(obj) if as_lua else json.dumps(obj))


if __name__ == "__main__":
    main()
