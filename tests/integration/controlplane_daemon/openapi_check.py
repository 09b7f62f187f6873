#!/usr/bin/python3
"""Spec-driven conformance check of a running segw-controlplane REST API.

Reads controlplane/api/openapi.yaml and, against a running server:
  - runs the cases (built in, or --cases FILE), at least one expecting a
    2xx for EVERY operation of the spec: an operation without one fails, so
    a new route without coverage fails the test;
  - checks each answer: its status is one the spec lists for the
    operation, its Content-Type one the spec gives for that status, its body
    valid against the spec's schema for that status ($ref resolved, OpenAPI
    3.0 `nullable` translated to JSON Schema, additionalProperties as the
    spec says; fields the spec does not name are printed as notes, failures
    with --strict);
  - derives the error checks from the spec: 401 without and with a wrong
    token on every authenticated operation (with WWW-Authenticate), 400 for
    malformed, non-object, unknown-field, wrongly typed and out-of-range
    request bodies, a 4xx the spec lists for an oversized body, 400 for a
    non-numeric id and 404 for an unknown id on every {id} operation, 400
    for an unknown query parameter, 405 (with an Allow that names exactly
    the spec's methods) for a method a path does not have, 404 for an
    undocumented path; all against the Error schema;
  - reads the event stream (text/event-stream) with a timeout and validates
    each event's data against components/schemas/Event;
  - parses the Prometheus text of /metrics (every sample line is
    name{labels} value, every `# TYPE` has samples).
Prints "  ok    ..." / "  FAIL  ..." per check; exits 1 on any failure.

--concurrency N --duration S instead hammers the spec's read operations
(every GET but the event stream; {id} filled from recent lists) from N
threads for S seconds while the caller makes tunnels come and go: a 404 for
an IKE SA that just went away is fine, a 5xx, a connection error, an
undocumented status or an invalid body is a failure.

Needs Debian python3-yaml and python3-jsonschema only.
Usage: openapi_check.py --server URL --token-file FILE --spec openapi.yaml
         [--cases FILE] [--insecure | --ca-file PEM] [--strict]
         [--concurrency N --duration S]
"""
import argparse
import copy
import http.client
import json
import math
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse

import jsonschema
import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Methods tried for 405, in this order: the first one a path lacks is used.
# (TRACE and CONNECT are not tried: cpp-httplib answers them itself.)
PROBE_METHODS = ("PUT", "PATCH", "POST", "DELETE", "GET")
# An id no test ever reaches (ids are never reused and count up from 1).
UNKNOWN_ID = "987654321"
# Bytes of padding for the oversized-body check (the server reads 64 KiB at
# most: controlplane/api/api_server.cc kMaxBodyBytes).
OVERSIZED_BODY = 100 * 1024


# ---------------------------------------------------------------- spec

class Spec:
    """The OpenAPI 3.0 document: operations, $ref resolution, schemas."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.global_security = self.doc.get("security", [])
        # (template, METHOD) -> operation, path-level parameters merged in.
        self.ops = {}
        self.paths = {}  # template -> set of METHODs
        for template, item in self.doc.get("paths", {}).items():
            item = self.resolve(item)
            shared_params = item.get("parameters", [])
            self.paths[template] = set()
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                op = dict(self.resolve(item[method]))
                params = {}
                for p in shared_params + op.get("parameters", []):
                    p = self.resolve(p)
                    params[(p["name"], p["in"])] = p
                op["parameters"] = list(params.values())
                self.ops[(template, method.upper())] = op
                self.paths[template].add(method.upper())
        self.templates = [(t, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"))
                          for t in self.paths]
        comps = self.doc.get("components", {}).get("schemas", {})
        self.error_schema = comps.get("Error")
        self.event_schema = comps.get("Event")

    def deref(self, ref):
        if not ref.startswith("#/"):
            raise ValueError("only local $refs are supported: " + ref)
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node):
        """One object with its top-level $ref chain followed."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            node = self.deref(node["$ref"])
            seen += 1
            if seen > 32:
                raise ValueError("$ref loop")
        return node

    def json_schema(self, schema, strict=False):
        """A JSON Schema (draft 7) for an OpenAPI 3.0 schema object: $refs
        inlined, `nullable` as a "null" type (or an anyOf with null), enum
        with null where nullable, OpenAPI-only keywords dropped. strict: an
        object without additionalProperties gets additionalProperties:false."""
        return self._translate(schema, strict, 0)

    def _translate(self, s, strict, depth):
        if depth > 64:
            raise ValueError("schema too deep (recursive $ref?)")
        if isinstance(s, dict) and "$ref" in s:
            return self._translate(self.deref(s["$ref"]), strict, depth + 1)
        if not isinstance(s, dict):
            return s
        out = {}
        for key, value in s.items():
            if key in ("nullable", "example", "examples", "xml", "externalDocs", "discriminator",
                       "readOnly", "writeOnly", "deprecated", "description", "title"):
                continue
            if key == "properties":
                out[key] = {k: self._translate(v, strict, depth + 1) for k, v in value.items()}
            elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
                out[key] = self._translate(value, strict, depth + 1)
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [self._translate(v, strict, depth + 1) for v in value]
            else:
                out[key] = copy.deepcopy(value)
        if strict and out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        if s.get("nullable") is True:
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
            elif "type" not in out:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def match(self, path, method):
        """(template, operation or None, path matched at all)."""
        for template, regex in self.templates:
            if regex.match(path):
                return template, self.ops.get((template, method)), True
        return None, None, False

    def needs_auth(self, op):
        security = op.get("security", self.global_security)
        return any(len(requirement) > 0 for requirement in security) if security else False

    def response(self, op, status):
        responses = op.get("responses", {})
        r = responses.get(str(status))
        if r is None:
            r = responses.get(str(status)[0] + "XX")
        if r is None:
            r = responses.get("default")
        return self.resolve(r) if r is not None else None


# ---------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body
        self._json = None
        self._json_error = None
        self._parsed = False

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                self._json_error = str(e)
        return self._json

    def text_excerpt(self, n=160):
        text = self.body[:n].decode("utf-8", "replace").replace("\n", "\\n")
        return text + ("..." if len(self.body) > n else "")


class Client:
    def __init__(self, server, token, insecure=False, ca_file=None, timeout=5.0):
        url = urllib.parse.urlsplit(server)
        self.https = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.https else 80)
        self.token = token
        self.timeout = timeout
        self.context = None
        if self.https:
            self.context = ssl.create_default_context(cafile=ca_file)
            if insecure:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def connect(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=t, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=t)

    def auth_headers(self, auth):
        if auth == "token":
            return {"Authorization": "Bearer " + self.token}
        if auth == "wrong":
            return {"Authorization": "Bearer wrong-" + self.token[::-1]}
        return {}

    def request(self, method, path, query=None, body=None, headers=None, auth="token", timeout=None):
        """One request on a connection of its own. body: bytes/str sent as
        is, anything else as JSON; None: no body (a POST then sends
        Content-Length: 0). Raises OSError/HTTPException on transport errors."""
        if query:
            path += "?" + urllib.parse.urlencode(query)
        all_headers = self.auth_headers(auth)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        elif body is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn = self.connect(timeout)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()


# ---------------------------------------------------------------- report

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def check(self, ok, what, why=""):
        with self.lock:
            if ok:
                self.passed += 1
                print("  ok    " + what, flush=True)
            else:
                self.failed += 1
                print("  FAIL  " + what + (": " + why if why else ""), flush=True)
        return ok

    def note(self, what):
        print("  note  " + what, flush=True)


def undocumented_fields(schema, instance, where=""):
    """Paths of object members the (translated) schema does not name, where
    the schema names any: the API's answers should be fully documented."""
    out = []
    if isinstance(instance, dict) and isinstance(schema, dict):
        props = {}
        subs = [schema] + schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", [])
        for sub in subs:
            props.update(sub.get("properties", {}))
        if props and not any("additionalProperties" in sub for sub in subs):
            out += [where + "." + k for k in instance if k not in props]
        for key, value in instance.items():
            for sub in subs:
                if key in sub.get("properties", {}):
                    out += undocumented_fields(sub["properties"][key], value, where + "." + key)
                    break
    elif isinstance(instance, list) and isinstance(schema, dict):
        subs = [schema] + schema.get("allOf", []) + schema.get("anyOf", [])
        for sub in subs:
            if "items" in sub:
                for i, item in enumerate(instance[:3]):
                    out += undocumented_fields(sub["items"], item, where + "[%d]" % i)
                break
    return out


def media_type(value):
    return (value or "").split(";")[0].strip().lower()


def content_matches(documented, actual):
    for doc in documented:
        doc = doc.lower()
        if doc == actual or doc == "*/*" or (doc.endswith("/*") and actual.startswith(doc[:-1])):
            return doc
    return None


_format_checker = jsonschema.FormatChecker()


@_format_checker.checks("date-time", raises=ValueError)
def _is_date_time(value):  # RFC 3339 (python3-jsonschema alone does not check it)
    if not isinstance(value, str):
        return True
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", value):
        raise ValueError("not an RFC 3339 date-time")
    return True


@_format_checker.checks("int64")
def _is_int64(value):
    return not isinstance(value, int) or -(1 << 63) <= value < (1 << 64)


def schema_errors(schema, instance, limit=3):
    validator = jsonschema.Draft7Validator(schema, format_checker=_format_checker)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)", e.message[:200])
            for e in errors[:limit]]


# ---------------------------------------------------------------- Prometheus

_metric_name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
_sample_re = re.compile(r"^(%s)(\{(?:%s(?:,%s)*,?)?\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$" % (_metric_name, _label, _label))
_type_re = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % _metric_name)
_help_re = re.compile(r"^# HELP (%s)( .*)?$" % _metric_name)


def prometheus_problems(text):
    """Problems of Prometheus text format 0.0.4, and the samples by name."""
    problems = []
    types = {}
    samples = {}
    if text and not text.endswith("\n"):
        problems.append("the last line does not end with a newline")
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            m = _type_re.match(line)
            if m:
                if m.group(1) in types:
                    problems.append("line %d: a second # TYPE for %s" % (n, m.group(1)))
                if m.group(1) in samples:
                    problems.append("line %d: # TYPE %s after its samples" % (n, m.group(1)))
                types[m.group(1)] = m.group(2)
            elif line.startswith("# TYPE") or (line.startswith("# HELP") and not _help_re.match(line)):
                problems.append("line %d: bad comment: %r" % (n, line[:100]))
            continue
        m = _sample_re.match(line)
        if not m:
            problems.append("line %d: not name{labels} value: %r" % (n, line[:100]))
            continue
        value = m.group(3)
        try:
            float(value)
        except ValueError:
            if value not in ("NaN", "+Inf", "-Inf"):
                problems.append("line %d: value %r is not a number" % (n, value))
                continue
        name = m.group(1)
        samples.setdefault(name, []).append((m.group(2) or "", value))
    for name, kind in types.items():
        related = [name] + ([name + s for s in ("_bucket", "_sum", "_count")] if kind in ("histogram", "summary") else [])
        if not any(r in samples for r in related):
            problems.append("# TYPE %s %s has no samples" % (name, kind))
        if kind == "counter" and name in samples:
            for labels, value in samples[name]:
                try:
                    if float(value) < 0:
                        problems.append("counter %s%s is negative" % (name, labels))
                except ValueError:
                    pass
    for name in samples:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and base not in types:
            problems.append("sample %s has no # TYPE" % name)
    return problems, samples


# ---------------------------------------------------------------- checks of one answer

class Checker:
    def __init__(self, spec, client, report, strict=False):
        self.spec = spec
        self.client = client
        self.report = report
        self.strict = strict
        self.vars = {}
        self.covered = {}  # (template, METHOD) -> cases expecting a 2xx that passed their status check
        self.cased = set()
        self.notes_seen = set()

    def response_problems(self, op, template, method, resp):
        """Problems of an answer against the spec (status, Content-Type,
        body schema, documented headers); [] when it conforms."""
        problems = []
        documented = self.spec.response(op, resp.status)
        if documented is None:
            return ["HTTP %d is not a status the spec lists for %s %s (%s)" %
                    (resp.status, method, template, ", ".join(sorted(op.get("responses", {}))))]
        content = documented.get("content", {})
        actual = media_type(resp.header("content-type"))
        if not content:
            if method != "HEAD" and resp.body:
                problems.append("a body (%d bytes) where the spec documents none" % len(resp.body))
            return problems
        if method == "HEAD":
            return problems
        doc_type = content_matches(content.keys(), actual)
        if doc_type is None:
            return ["Content-Type %r, the spec says %s" % (resp.header("content-type"), ", ".join(content))]
        schema_obj = content[doc_type].get("schema")
        if schema_obj is not None:
            schema = self.spec.json_schema(schema_obj, self.strict)
            if doc_type == "application/json" or doc_type.endswith("+json"):
                instance = resp.json()
                if instance is None and resp._json_error:
                    return ["the body is not JSON (%s): %s" % (resp._json_error, resp.text_excerpt())]
                problems += ["schema: " + e for e in schema_errors(schema, instance)]
                for field in undocumented_fields(self.spec.json_schema(schema_obj), instance):
                    key = (template, method, resp.status, re.sub(r"\[\d+\]", "[]", field))
                    if key not in self.notes_seen:
                        self.notes_seen.add(key)
                        self.report.note("%s %s %d: field %s is not in the spec" % (method, template, resp.status, key[3]))
            elif doc_type.startswith("text/"):
                try:
                    text = resp.body.decode("utf-8")
                except UnicodeDecodeError as e:
                    return ["the text body is not UTF-8: %s" % e]
                problems += ["schema: " + e for e in schema_errors(schema, text)]
        for name, header in documented.get("headers", {}).items():
            header = self.spec.resolve(header)
            value = resp.header(name)
            if value is None:
                if header.get("required"):
                    problems.append("the required header %s is missing" % name)
                continue
            if "schema" in header:
                problems += ["header %s: %s" % (name, e)
                             for e in schema_errors(self.spec.json_schema(header["schema"]), value)]
        return problems

    def exchange(self, what, method, path, expect, query=None, body=None, headers=None, auth="token",
                 op_template=None, extra=None, count_coverage=False):
        """Sends a request, checks its answer against `expect` (a status or
        a list of them) and the spec, reports one check. Returns the answer
        or None."""
        template, op, path_known = self.spec.match(path, method if method != "HEAD" else "GET")
        expects = expect if isinstance(expect, list) else [expect]
        try:
            resp = self.client.request(method, path, query=query, body=body, headers=headers, auth=auth)
        except (OSError, http.client.HTTPException) as e:
            self.report.check(False, what, "%s %s: %s" % (method, path, e))
            return None
        problems = []
        if resp.status not in expects:
            problems.append("HTTP %d, expected %s (%s)" % (resp.status, "/".join(map(str, expects)), resp.text_excerpt()))
        if op is not None:
            problems += self.response_problems(op, template, method, resp)
        elif resp.status in (404, 405, 401) and self.spec.error_schema is not None:
            # No operation documents this answer: the API's error shape.
            if media_type(resp.header("content-type")) != "application/json":
                problems.append("Content-Type %r for an error, expected application/json" % resp.header("content-type"))
            else:
                problems += ["Error schema: " + e for e in
                             schema_errors(self.spec.json_schema(self.spec.error_schema), resp.json())]
        if extra:
            problems += extra(resp)
        ok = self.report.check(not problems, what, "; ".join(problems))
        if count_coverage and op is not None:
            self.cased.add((template, method))
            if ok and any(200 <= s < 300 for s in expects):
                self.covered.setdefault((template, method), []).append(what)
        return resp


# ---------------------------------------------------------------- cases

# The default cases, for a server with at least 5 established IKE SAs (the
# set-up openapi.sh makes). ${name} is a variable saved from an earlier
# answer by `save` (a dotted path; `list[key=value]` filters a list).
# Cases run in order; the destructive ones (rekey, move, DELETE) come last
# and use IKE SAs of their own.
BUILTIN_CASES = [
    {"name": "health", "method": "GET", "path": "/v1/health", "auth": "none", "expect": 200},
    {"name": "ready", "method": "GET", "path": "/v1/ready", "auth": "none", "expect": 200},
    {"name": "event stream (opened before the changes, read at the end)", "method": "GET",
     "path": "/v1/events", "expect": 200,
     "stream": {"min_events": 4, "seconds": 15, "expect_kinds": ["moved", "deleted", "ike_rekeyed"]}},
    {"name": "event stream resumed with the id of an earlier run: told at once (dropped, restarted)",
     "method": "GET", "path": "/v1/events", "expect": 200, "headers": {"Last-Event-ID": "1-1"},
     "stream": {"min_events": 1, "seconds": 5, "expect_kinds": ["dropped"]}},
    {"name": "event stream with a Last-Event-ID that is not one: 400", "method": "GET", "path": "/v1/events",
     "headers": {"Last-Event-ID": "yesterday"}, "expect": 400},
    {"name": "list", "method": "GET", "path": "/v1/ike-sas", "expect": 200,
     "save": {"sa_show": "ike_sas[state=established].0.id",
              "sa_rekey": "ike_sas[state=established].1.id",
              "sa_rekey_child": "ike_sas[state=established].2.id",
              "sa_move": "ike_sas[state=established].3.id",
              "sa_delete": "ike_sas[state=established].4.id",
              "peer_id": "ike_sas[state=established].0.peer_id",
              "public": "ike_sas[state=established].0.remote.address",
              "inner": "ike_sas[state=established].0.inner_ipv4"},
     "min_items": {"ike_sas[state=established]": 5}},
    {"name": "list ?identity=", "method": "GET", "path": "/v1/ike-sas", "query": {"identity": "${peer_id}"},
     "expect": 200, "min_items": {"ike_sas": 1}},
    {"name": "list ?public=", "method": "GET", "path": "/v1/ike-sas", "query": {"public": "${public}"},
     "expect": 200, "min_items": {"ike_sas": 1}},
    {"name": "list ?inner=", "method": "GET", "path": "/v1/ike-sas", "query": {"inner": "${inner}"},
     "expect": 200, "min_items": {"ike_sas": 1}},
    {"name": "list ?inner=bogus", "method": "GET", "path": "/v1/ike-sas", "query": {"inner": "bogus"},
     "expect": 400},
    {"name": "list ?limit=2: the first page", "method": "GET", "path": "/v1/ike-sas", "query": {"limit": "2"},
     "expect": 200, "save": {"page_after": "next_after"}, "min_items": {"ike_sas": 2}},
    {"name": "list ?limit=2&after=: the next page", "method": "GET", "path": "/v1/ike-sas",
     "query": {"limit": "2", "after": "${page_after}"}, "expect": 200, "min_items": {"ike_sas": 1}},
    {"name": "list ?limit=0", "method": "GET", "path": "/v1/ike-sas", "query": {"limit": "0"}, "expect": 400},
    {"name": "list ?limit=10001", "method": "GET", "path": "/v1/ike-sas", "query": {"limit": "10001"},
     "expect": 400},
    {"name": "list ?after=x", "method": "GET", "path": "/v1/ike-sas", "query": {"after": "x"}, "expect": 400},
    {"name": "show", "method": "GET", "path": "/v1/ike-sas/${sa_show}", "expect": 200,
     "min_items": {"children": 1}},
    {"name": "stats", "method": "GET", "path": "/v1/stats", "expect": 200},
    {"name": "pools", "method": "GET", "path": "/v1/pools", "expect": 200,
     "save": {"pool": "pools.0.name"}, "min_items": {"pools": 1}},
    {"name": "one pool with its leases", "method": "GET", "path": "/v1/pools/${pool}", "expect": 200,
     "min_items": {"leases": 1}},
    {"name": "pool ?limit=2: the first page", "method": "GET", "path": "/v1/pools/${pool}",
     "query": {"limit": "2"}, "expect": 200, "save": {"lease_after": "next_after"}, "min_items": {"leases": 2}},
    {"name": "pool ?limit=2&after=: the next page", "method": "GET", "path": "/v1/pools/${pool}",
     "query": {"limit": "2", "after": "${lease_after}"}, "expect": 200, "min_items": {"leases": 1}},
    {"name": "pool ?limit=0", "method": "GET", "path": "/v1/pools/${pool}", "query": {"limit": "0"},
     "expect": 400},
    {"name": "pool ?after=bogus", "method": "GET", "path": "/v1/pools/${pool}", "query": {"after": "bogus"},
     "expect": 400},
    {"name": "pool ?after= of the other family", "method": "GET", "path": "/v1/pools/${pool}",
     "query": {"after": "2001:db8::1"}, "expect": 400},
    {"name": "pool ?colour=blue", "method": "GET", "path": "/v1/pools/${pool}", "query": {"colour": "blue"},
     "expect": 400},
    {"name": "data plane figures: 404 without a data plane (transport = udp)", "method": "GET",
     "path": "/v1/dataplane", "expect": 404},
    {"name": "configuration reload (the same file): applied, tunnels kept", "method": "POST",
     "path": "/v1/config/reload", "expect": 200},
    {"name": "metrics", "method": "GET", "path": "/metrics", "expect": 200, "prometheus": True},
    {"name": "HEAD /v1/health (GET without a body)", "method": "HEAD", "path": "/v1/health", "auth": "none",
     "expect": 200},
    # Destructive, each on an IKE SA of its own.
    {"name": "rekey (IKE), no body", "method": "POST", "path": "/v1/ike-sas/${sa_rekey}/rekey", "expect": 202},
    {"name": "rekey (child)", "method": "POST", "path": "/v1/ike-sas/${sa_rekey_child}/rekey",
     "body": {"child": True}, "expect": 202},
    {"name": "move to another family: 409", "method": "POST", "path": "/v1/ike-sas/${sa_move}/move",
     "body": {"address": "2001:db8::7", "port": 4500}, "expect": 409},
    {"name": "move", "method": "POST", "path": "/v1/ike-sas/${sa_move}/move",
     "body": {"address": "127.1.0.250", "port": 10509}, "expect": 200,
     "equals": {"remote.address": "127.1.0.250", "remote.port": 10509}},
    {"name": "DELETE", "method": "DELETE", "path": "/v1/ike-sas/${sa_delete}", "expect": 202},
    {"name": "DELETE gone: show is 404 within 5 s", "method": "GET", "path": "/v1/ike-sas/${sa_delete}",
     "expect": 404, "retry_s": 5},
]


def dig(value, dotted):
    """A value of a JSON document by dotted path; `name[key=value]` filters
    a list by a member's value. KeyError/IndexError when it is not there."""
    for part in dotted.split("."):
        m = re.match(r"^([^\[]*)\[([^=\]]+)=([^\]]*)\]$", part)
        if m:
            if m.group(1):
                value = value[m.group(1)]
            value = [v for v in value if isinstance(v, dict) and str(v.get(m.group(2))) == m.group(3)]
        elif isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def substitute(value, variables):
    if isinstance(value, str):
        def repl(m):
            if m.group(1) not in variables:
                raise KeyError(m.group(1))
            return str(variables[m.group(1)])
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", repl, value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


class EventReader(threading.Thread):
    """Reads an event stream: the status, Content-Type, and its events
    (name, data) until min_events and expect_kinds are seen or time is up."""

    def __init__(self, client, path, seconds, min_events, expect_kinds, headers=None):
        super().__init__(daemon=True)
        self.client, self.path, self.headers = client, path, headers or {}
        self.deadline = time.monotonic() + seconds
        self.min_events, self.expect_kinds = min_events, set(expect_kinds)
        self.status = None
        self.content_type = None
        self.error_body = b""
        self.events = []
        self.ids = []  # each event's id: line ("" when it had none)
        self.comments = 0
        self.error = None
        self.conn = None
        self.opened = threading.Event()

    def satisfied(self):
        kinds = {name for name, _ in self.events}
        return len(self.events) >= self.min_events and self.expect_kinds <= kinds

    def close(self):
        """Ends a read that blocks (from another thread)."""
        conn = self.conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        self.conn = None
        try:
            self.conn = self.client.connect(timeout=5.0)
            self.conn.request("GET", self.path, headers={**self.client.auth_headers("token"), **self.headers})
            r = self.conn.getresponse()
            self.status = r.status
            self.content_type = r.getheader("Content-Type")
            if r.status != 200:
                self.error_body = r.read()
                return
            self.conn.sock.settimeout(None)  # the caller's deadline ends the read (close())
            self.opened.set()
            event, data, event_id = None, [], ""
            while time.monotonic() < self.deadline and not self.satisfied():
                line = r.readline()  # de-chunked by http.client
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data or event:
                        self.events.append((event or "message", "\n".join(data)))
                        self.ids.append(event_id)
                    event, data, event_id = None, [], ""
                elif line.startswith(":"):
                    self.comments += 1
                elif line.startswith("event:"):
                    event = line[6:].lstrip(" ")
                elif line.startswith("data:"):
                    data.append(line[5:][1:] if line[5:].startswith(" ") else line[5:])
                elif line.startswith("id:"):
                    event_id = line[3:].lstrip(" ")
                # retry: is not used by this API
        except (OSError, ValueError, http.client.HTTPException, UnicodeDecodeError) as e:
            if time.monotonic() < self.deadline and not self.satisfied():
                self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.opened.set()
            if self.conn:
                self.conn.close()


def run_cases(checker, cases):
    spec, report = checker.spec, checker.report
    readers = []
    for case in cases:
        name = case.get("name", case["method"] + " " + case["path"])
        method = case["method"].upper()
        try:
            path = substitute(case["path"], checker.vars)
            query = substitute(case.get("query"), checker.vars)
            body = substitute(case.get("body"), checker.vars)
        except KeyError as e:
            report.check(False, name, "variable %s was not saved by an earlier case" % e)
            continue
        template, op, _ = spec.match(path, method if method != "HEAD" else "GET")
        if op is not None:
            checker.cased.add((template, method if method != "HEAD" else "GET"))
        if "stream" in case:
            s = case["stream"]
            reader = EventReader(checker.client, path, s.get("seconds", 10), s.get("min_events", 1),
                                 s.get("expect_kinds", []), substitute(case.get("headers"), checker.vars))
            reader.start()
            reader.opened.wait(5)
            readers.append((name, template, op, reader, case))
            continue
        label = "%s: %s %s" % (name, method, path + ("?" + urllib.parse.urlencode(query) if query else ""))

        def extra(resp, case=case):
            problems = []
            doc = resp.json() if resp.body and media_type(resp.header("content-type")) == "application/json" else None
            for dotted, least in case.get("min_items", {}).items():
                try:
                    n = len(dig(doc, dotted))
                except (KeyError, IndexError, TypeError, ValueError):
                    n = 0
                if n < least:
                    problems.append("%s has %d items, the case needs %d" % (dotted, n, least))
            for dotted, want in substitute(case.get("equals", {}), checker.vars).items():
                try:
                    got = dig(doc, dotted)
                except (KeyError, IndexError, TypeError, ValueError):
                    got = "(missing)"
                if got != want:
                    problems.append("%s is %r, expected %r" % (dotted, got, want))
            if case.get("prometheus") and resp.status == 200:
                text = resp.body.decode("utf-8", "replace")
                found, samples = prometheus_problems(text)
                problems += ["metrics: " + p for p in found[:5]]
                if not samples:
                    problems.append("metrics: no samples")
            return problems

        expects = case["expect"] if isinstance(case["expect"], list) else [case["expect"]]
        # retry_s: an asynchronous change; try quietly until the expected
        # status comes or the time is up, then once more as the check.
        deadline = time.monotonic() + case.get("retry_s", 0)
        while time.monotonic() < deadline:
            try:
                if checker.client.request(method, path, query=query, body=body, headers=case.get("headers"),
                                          auth=case.get("auth", "token")).status in expects:
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        resp = checker.exchange(label, method, path, case["expect"], query=query, body=body,
                                headers=case.get("headers"), auth=case.get("auth", "token"), extra=extra,
                                count_coverage=True)
        if resp is not None and resp.status in expects:
            for var, dotted in case.get("save", {}).items():
                try:
                    checker.vars[var] = dig(resp.json(), dotted)
                except (KeyError, IndexError, TypeError, ValueError):
                    report.check(False, "%s: save %s = %s" % (name, var, dotted), "not in the answer")
        time.sleep(case.get("sleep_after", 0))

    for name, template, op, reader, case in readers:
        reader.join(max(0.0, reader.deadline - time.monotonic()) + 0.5)
        if reader.is_alive():
            reader.close()
            reader.join(5)
        check_event_stream(checker, name, template, op, reader, case["stream"])


def check_event_stream(checker, name, template, op, reader, stream):
    spec, report = checker.spec, checker.report
    if reader.status is None:
        report.check(False, name, "no answer: %s" % reader.error)
        return
    resp = Response(reader.status, {"content-type": reader.content_type or ""}, reader.error_body)
    problems = []
    if reader.status != 200:
        problems.append("HTTP %d: %s" % (reader.status, resp.text_excerpt()))
    if op is not None:
        documented = spec.response(op, reader.status)
        if documented is None:
            problems.append("HTTP %d is not documented" % reader.status)
        elif content_matches(documented.get("content", {}).keys(), media_type(reader.content_type)) is None:
            problems.append("Content-Type %r, the spec says %s" % (reader.content_type, ", ".join(documented.get("content", {}))))
    ok = report.check(not problems, "%s: GET %s answers 200 text/event-stream" % (name, template), "; ".join(problems))
    if ok and op is not None:
        checker.covered.setdefault((template, "GET"), []).append(name)
    if reader.status != 200:
        return
    report.check(reader.comments >= 1, "%s: the stream opens with a comment line" % name)
    report.check(reader.error is None, "%s: read without a transport error" % name, str(reader.error))
    kinds = [n for n, _ in reader.events]
    report.check(len(reader.events) >= stream.get("min_events", 1),
                 "%s: at least %d events within %s s (got %d: %s)" % (name, stream.get("min_events", 1),
                                                                      stream.get("seconds", 10), len(kinds),
                                                                      ", ".join(kinds)))
    missing = set(stream.get("expect_kinds", [])) - set(kinds)
    report.check(not missing, "%s: the events include %s" % (name, ", ".join(stream.get("expect_kinds", []))),
                 "missing " + ", ".join(sorted(missing)))
    event_schema = spec.json_schema(spec.event_schema, checker.strict) if spec.event_schema else None
    bad = []
    for event, data in reader.events:
        try:
            doc = json.loads(data)
        except ValueError as e:
            bad.append("%s: data is not JSON (%s): %r" % (event, e, data[:100]))
            continue
        if event == "dropped":  # the stream's own notice (openapi.yaml /v1/events description)
            if not (isinstance(doc, dict) and (isinstance(doc.get("dropped"), int) or doc.get("dropped") is None)
                    and doc.get("reason") in ("slow", "not_kept", "restarted")):
                bad.append("dropped: data is not {\"dropped\": N or null, \"reason\": slow|not_kept|restarted}: %r"
                           % data[:100])
            continue
        if event_schema is None:
            continue
        for e in schema_errors(event_schema, doc):
            bad.append("%s: %s" % (event, e))
        if isinstance(doc, dict) and "kind" in doc and doc["kind"] != event:
            bad.append("event: %s but data.kind %r" % (event, doc["kind"]))
    # Engine events carry ids STREAM-SEQUENCE (one stream, rising), for
    # Last-Event-ID; the stream's own notices carry none.
    id_problems, last = [], None
    for (event, _), event_id in zip(reader.events, reader.ids):
        if event == "dropped":
            if event_id:
                id_problems.append("dropped has id %r" % event_id)
            continue
        m = re.match(r"^([0-9]+)-([0-9]+)$", event_id)
        if not m:
            id_problems.append("%s: id %r is not STREAM-SEQUENCE" % (event, event_id))
            continue
        if last is not None and (m.group(1) != last[0] or int(m.group(2)) <= last[1]):
            id_problems.append("%s: id %s does not follow %s-%d" % (event, event_id, last[0], last[1]))
        last = (m.group(1), int(m.group(2)))
    report.check(not id_problems, "%s: every event has an id, one stream, rising" % name, "; ".join(id_problems[:6]))
    if event_schema is None:
        report.note("%s: the spec has no components/schemas/Event: event data checked as JSON only" % name)
    report.check(not bad, "%s: every event's data is valid against the Event schema (%d events)" %
                 (name, len(reader.events)), "; ".join(bad[:6]))


# ---------------------------------------------------------------- checks derived from the spec

def sample_value(spec, schema):
    """A valid value for a schema: its example, default or enum, else one
    from its type."""
    schema = spec.resolve(schema or {})
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: sample_value(spec, prop) for name, prop in schema.get("properties", {}).items()
                if name in schema.get("required", [])}
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if "maximum" not in schema or schema["maximum"] >= 1 else schema["maximum"]
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return "x"


def wrong_type_value(schema):
    kind = schema.get("type")
    return {"string": 12345, "integer": "12", "number": "1.5", "boolean": "yes",
            "array": {"a": 1}, "object": [1]}.get(kind)


def fill_path(template, ident):
    return re.sub(r"\{[^}]+\}", ident, template)


def derived_checks(checker, live_id):
    """The error answers the spec promises, for every operation."""
    spec, report = checker.spec, checker.report
    error_schema = spec.json_schema(spec.error_schema) if spec.error_schema else None

    def www_authenticate(resp):
        value = resp.header("WWW-Authenticate") or ""
        return [] if value.lower().startswith("bearer") else ["WWW-Authenticate is %r, expected Bearer ..." % value]

    print("-- 401 on every authenticated operation")
    for (template, method), op in sorted(spec.ops.items()):
        if not spec.needs_auth(op):
            continue
        path = fill_path(template, str(live_id))
        body = None
        if "requestBody" in op:
            media = spec.resolve(op["requestBody"]).get("content", {}).get("application/json", {})
            body = sample_value(spec, media.get("schema"))
        for auth, label in (("none", "without a token"), ("wrong", "with a wrong token")):
            if "401" not in op.get("responses", {}):
                report.check(False, "%s %s %s" % (method, template, label), "the spec lists no 401 for it")
                continue
            checker.exchange("%s %s %s: 401" % (method, template, label), method, path, 401, body=body,
                             auth=auth, extra=www_authenticate)

    print("-- {id} operations: a non-numeric id (400), an unknown id (404)")
    for (template, method), op in sorted(spec.ops.items()):
        id_params = [p for p in op["parameters"] if p.get("in") == "path"]
        if not id_params:
            continue
        body = None
        if "requestBody" in op:
            media = spec.resolve(op["requestBody"]).get("content", {}).get("application/json", {})
            body = sample_value(spec, media.get("schema"))
        # Ids the parameter's schema refuses: 400 (only an integer schema
        # tells what a bad one is); an id that names nothing: 404.
        tries = []
        for p in id_params:
            schema = spec.resolve(p.get("schema", {}))
            if schema.get("type") == "integer":
                tries.append(("not-a-number", 400))
                if schema.get("minimum", -1) >= 0:
                    tries.append(("-1", 400))
        tries.append((UNKNOWN_ID, 404))
        for ident, status in tries:
            if str(status) not in op.get("responses", {}):
                report.check(False, "%s %s with id %s" % (method, template, ident),
                             "the spec lists no %d for it" % status)
                continue
            checker.exchange("%s %s with id %s: %d" % (method, template, ident, status), method,
                             fill_path(template, ident), status, body=body)

    print("-- request bodies: malformed, not an object, unknown field, wrong types, out of range")
    for (template, method), op in sorted(spec.ops.items()):
        if "requestBody" not in op:
            continue
        request_body = spec.resolve(op["requestBody"])
        media = request_body.get("content", {}).get("application/json")
        if media is None:
            continue
        schema = spec.resolve(media.get("schema", {}))
        path = fill_path(template, str(live_id))
        valid = sample_value(spec, schema)
        bodies = [("malformed JSON", '{"x":'), ("malformed JSON (trailing garbage)", '{} x'),
                  ("a JSON array", "[]"), ("a JSON string", '"x"')]
        if request_body.get("required"):
            bodies.append(("an empty body (requestBody required)", ""))
        if schema.get("additionalProperties") is False:
            bodies.append(("an unknown field (additionalProperties: false)", dict(valid, segw_no_such_field=1)))
        for field in schema.get("required", []):
            bodies.append(("without required %s" % field, {k: v for k, v in valid.items() if k != field}))
        for field, prop in schema.get("properties", {}).items():
            prop = spec.resolve(prop)
            wrong = wrong_type_value(prop)
            if wrong is not None:
                bodies.append(("%s of a wrong type (%s)" % (field, json.dumps(wrong)), dict(valid, **{field: wrong})))
            if "minimum" in prop:
                bodies.append(("%s below its minimum" % field, dict(valid, **{field: prop["minimum"] - 1})))
            if "maximum" in prop:
                bodies.append(("%s above its maximum" % field, dict(valid, **{field: prop["maximum"] + 1})))
        if "400" not in op.get("responses", {}):
            report.check(False, "%s %s bad bodies" % (method, template), "the spec lists no 400 for it")
            continue
        for label, body in bodies:
            checker.exchange("%s %s with %s: 400" % (method, template, label), method, path, 400,
                             body=body if isinstance(body, str) else json.dumps(body))
        # A body far beyond any the API takes: whatever the server says,
        # the spec must list it (a 4xx; nothing is changed).
        documented_4xx = sorted(int(c) for c in op.get("responses", {}) if c.isdigit() and c.startswith("4"))
        checker.exchange("%s %s with a %d KiB body: a 4xx the spec lists (%s)" %
                         (method, template, OVERSIZED_BODY // 1024, "/".join(map(str, documented_4xx))),
                         method, path, documented_4xx, body=json.dumps(valid) + " " * OVERSIZED_BODY)

    print("-- an unknown query parameter: 400 where the spec lists it, else a documented status")
    for (template, method), op in sorted(spec.ops.items()):
        if method != "GET":
            continue
        has_path = any(p.get("in") == "path" for p in op["parameters"])
        documented = sorted(int(s) for s in op.get("responses", {}) if s.isdigit())
        expect = [400] if "400" in op.get("responses", {}) and not has_path else documented
        checker.exchange("GET %s?segw_no_such_parameter=1: %s" % (template, "/".join(map(str, expect))), "GET",
                         fill_path(template, str(live_id)), expect, query={"segw_no_such_parameter": "1"},
                         auth="token" if spec.needs_auth(op) else "none")

    print("-- 405 for a method a path does not have (Allow: the spec's methods)")
    for template, methods in sorted(spec.paths.items()):
        probe = next((m for m in PROBE_METHODS if m not in methods), None)
        if probe is None:
            continue
        documented = set(methods) | ({"HEAD"} if "GET" in methods else set())

        def allow(resp, documented=documented, methods=methods):
            got = {m.strip().upper() for m in (resp.header("Allow") or "").split(",") if m.strip()}
            if not got:
                return ["no Allow header"]
            if not (set(methods) <= got <= documented):
                return ["Allow: %s, the spec has %s" % (resp.header("Allow"), ", ".join(sorted(methods)))]
            return []
        checker.exchange("%s %s: 405 with Allow" % (probe, template), probe, fill_path(template, str(live_id)),
                         405, body="{}" if probe in ("PUT", "PATCH", "POST") else None, extra=allow)

    print("-- undocumented paths")
    for path in ("/v1/segw-no-such-route", "/v2/health", "/v1/ike-sas/%s/segw-no-such-action" % live_id, "/"):
        template, _, known = spec.match(path, "GET")
        if known:
            continue
        checker.exchange("GET %s (not in the spec): 404" % path, "GET", path, 404)
    checker.exchange("GET /v1/segw-no-such-route without a token: 401 (nothing said to strangers)", "GET",
                     "/v1/segw-no-such-route", [401, 404], auth="none")


# ---------------------------------------------------------------- concurrency

def run_concurrency(spec, client, report, threads, duration, strict, exclude=()):
    """N threads, S seconds, every read operation of the spec round robin."""
    read_ops = []
    for (template, method), op in sorted(spec.ops.items()):
        if method != "GET":
            continue
        if any("text/event-stream" in spec.resolve(r).get("content", {})
               for r in op.get("responses", {}).values()):
            continue
        read_ops.append((template, op))
    list_template = next((t for t, _ in read_ops if t == "/v1/ike-sas"), None)
    # Templated paths get ids from the IKE SA list: only those under it.
    skipped = [t for t, _ in read_ops if "{" in t and not (list_template and t.startswith(list_template + "/"))]
    read_ops = [(t, op) for t, op in read_ops if t not in skipped and t not in exclude]
    if skipped:
        report.note("concurrency: not hammered (no ids for them): " + ", ".join(skipped))
    ids = []
    ids_lock = threading.Lock()
    stats = {"requests": 0, "ok": 0, "gone": 0, "by_status": {}}
    failures = []
    stop_at = time.monotonic() + duration
    checker = Checker(spec, client, Report(), strict)
    checker.report.note = lambda what: None  # notes are the conformance run's business

    def record(status, failure=None):
        with ids_lock:
            stats["requests"] += 1
            stats["by_status"][status] = stats["by_status"].get(status, 0) + 1
            if failure:
                failures.append(failure)

    def worker(n):
        i = n
        while time.monotonic() < stop_at:
            template, op = read_ops[i % len(read_ops)]
            i += 1
            path = template
            if "{" in template:
                with ids_lock:
                    if not ids:
                        continue
                    path = fill_path(template, str(ids[i % len(ids)]))
            try:
                resp = client.request("GET", path, timeout=10)
            except (OSError, http.client.HTTPException) as e:
                record("error", "GET %s: %s" % (path, e))
                continue
            if resp.status >= 500:
                record(resp.status, "GET %s: HTTP %d %s" % (path, resp.status, resp.text_excerpt()))
                continue
            if resp.status == 404 and "{" in template:
                record(404)  # the IKE SA went away in between: fine
                with ids_lock:
                    stats["gone"] += 1
                problems = checker.response_problems(op, template, "GET", resp)
                if problems:
                    record("invalid", "GET %s 404: %s" % (path, "; ".join(problems)))
                continue
            if not 200 <= resp.status < 300:
                record(resp.status, "GET %s: HTTP %d %s" % (path, resp.status, resp.text_excerpt()))
                continue
            problems = checker.response_problems(op, template, "GET", resp)
            if template == "/metrics":
                problems += prometheus_problems(resp.body.decode("utf-8", "replace"))[0][:3]
            if problems:
                record("invalid", "GET %s: %s" % (path, "; ".join(problems[:3])))
                continue
            record(resp.status)
            if template == list_template:
                fresh = [sa.get("id") for sa in (resp.json() or {}).get("ike_sas", []) if "id" in sa]
                with ids_lock:
                    ids[:] = fresh or ids

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(duration + 30)
    print("    (%d requests in %.0f s from %d threads over %s; by status: %s; %d shows of an IKE SA that had gone)" %
          (stats["requests"], duration, threads, ", ".join(t for t, _ in read_ops),
           ", ".join("%s: %d" % (k, v) for k, v in sorted(stats["by_status"].items(), key=str)), stats["gone"]))
    report.check(stats["requests"] > 0, "concurrency: requests were made")
    report.check(not any(w.is_alive() for w in workers), "concurrency: every thread finished")
    report.check(not failures, "concurrency: no 5xx, connection error, unexpected status or invalid body (%d failures)"
                 % len(failures), "; ".join(failures[:5]))


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8443")
    parser.add_argument("--token-file", help="the bearer token (first line)")
    parser.add_argument("--spec", required=True, help="controlplane/api/openapi.yaml")
    parser.add_argument("--cases", help="JSON file: a list of cases (or {\"cases\": [...]}); default: built in")
    parser.add_argument("--insecure", action="store_true", help="HTTPS without certificate verification")
    parser.add_argument("--ca-file", help="HTTPS: verify the server against this PEM")
    parser.add_argument("--covered-elsewhere", action="append", default=[], metavar="'METHOD PATH: WHY'",
                        help="an operation this server cannot answer with a 2xx (e.g. GET /v1/dataplane "
                             "without a data plane) whose 2xx another test checks; its error answers are still checked")
    parser.add_argument("--only", action="append", default=[], metavar="'METHOD PATH'",
                        help="check only these operations of the spec (cases for others are skipped): a "
                             "server that can answer only some of them (a second daemon with a data plane)")
    parser.add_argument("--strict", action="store_true",
                        help="answers may hold only fields the spec names (additionalProperties: false where unset)")
    parser.add_argument("--concurrency", type=int, default=0, metavar="N",
                        help="instead of the conformance run: N threads on the read routes")
    parser.add_argument("--duration", type=float, default=10, metavar="S", help="--concurrency: seconds")
    args = parser.parse_args()

    token = ""
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.readline().strip()
    spec = Spec(args.spec)
    if args.only:
        wanted = set()
        for entry in args.only:
            method_name, _, template_name = entry.strip().partition(" ")
            wanted.add((template_name.strip(), method_name.strip().upper()))
        unknown = wanted - set(spec.ops)
        if unknown:
            print("--only names operations the spec does not have: %s" % sorted(unknown))
            return 2
        spec.ops = {key: op for key, op in spec.ops.items() if key in wanted}
    client = Client(args.server, token, args.insecure, args.ca_file)
    report = Report()

    if args.concurrency > 0:
        exclude = [entry.partition(":")[0].strip().partition(" ")[2].strip() for entry in args.covered_elsewhere]
        run_concurrency(spec, client, report, args.concurrency, args.duration, args.strict, exclude)
    else:
        cases = BUILTIN_CASES
        if args.cases:
            with open(args.cases, encoding="utf-8") as f:
                cases = json.load(f)
            if isinstance(cases, dict):
                cases = cases["cases"]
        checker = Checker(spec, client, report, args.strict)
        print("-- spec: %d operations on %d paths (%s)" % (len(spec.ops), len(spec.paths), args.spec))
        print("-- cases")
        run_cases(checker, cases)
        live_id = checker.vars.get("sa_show", 1)
        derived_checks(checker, live_id)
        print("-- coverage: a passing 2xx case for every operation of the spec")
        elsewhere = {}
        for entry in args.covered_elsewhere:
            what, _, why = entry.partition(":")
            method_name, _, template_name = what.strip().partition(" ")
            elsewhere[(template_name.strip(), method_name.strip().upper())] = why.strip()
        for (template, method) in sorted(spec.ops):
            if (template, method) in elsewhere:
                report.check((template, method) in checker.cased, "%s %s covered elsewhere (%s)" % (
                    method, template, elsewhere[(template, method)]), "no case for its error answer here")
                continue
            cases_ok = checker.covered.get((template, method), [])
            why = ("only error or failed cases" if (template, method) in checker.cased else
                   "no case: add one to the cases (a new route needs one)")
            report.check(bool(cases_ok), "%s %s covered (%s)" % (method, template, ", ".join(cases_ok) or "-"), why)

    print("== %d checks passed, %d failed" % (report.passed, report.failed))
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
