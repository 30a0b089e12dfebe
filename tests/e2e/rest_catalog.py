"""An Iceberg REST catalog server for the tests, on loopback.

No REST catalog server installs from the registries the tests may use, so this one
serves the REST OpenAPI routes Floe and PyIceberg call, with PyIceberg's own models of
the spec's requests and responses, and keeps the tables in PyIceberg's SQL catalog:
table metadata, requirement checks and commits are PyIceberg's, not the tests'.
Clients authenticate with OAuth2 client credentials (POST /v1/oauth/tokens). As Polaris
and Lakekeeper do, the catalog's routes live under a prefix (/v1/PREFIX/namespaces/...),
which the server hands out in its /v1/config answer, or which the client must know.

Like Polaris and Lakekeeper, it may name its warehouse logically: then clients ask for
it by that NAME, and the server places tables under its WAREHOUSE location itself.

Usage: rest_catalog.py PORT CLIENT_ID:CLIENT_SECRET SQLITE_PATH WAREHOUSE PREFIX config|client [NAME]
Prints "listening" once it accepts connections.
"""
import json
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

from pyiceberg.catalog.rest import CreateTableRequest, TableResponse
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import CommitTableRequest
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

port, credential, sqlite_path, warehouse, prefix, prefix_from = sys.argv[1:7]
name = sys.argv[7] if len(sys.argv) > 7 else None
catalog = SqlCatalog("rest", uri=f"sqlite:///{sqlite_path}", warehouse=warehouse)
tokens = set()
lock = Lock()


class Error(Exception):
    def __init__(self, code, kind, message):
        super().__init__(message)
        self.code, self.kind, self.message = code, kind, message


def namespace(part):
    return tuple(urllib.parse.unquote(part).split("\x1f"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=None):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        try:
            path = urllib.parse.urlparse(self.path).path
            parts = [p for p in path.split("/") if p][1:]  # after "v1"
            if parts == ["oauth", "tokens"] and self.command == "POST":
                return self.token()
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in tokens:
                raise Error(401, "NotAuthorizedException", "not authorized")
            if parts == ["config"]:
                asked = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("warehouse", [None])[0]
                if name is not None and asked != name:
                    raise Error(404, "NoSuchWarehouseException", f"no warehouse named {asked!r}")
                overrides = {"prefix": prefix} if prefix_from == "config" else {}
                return self.reply(200, {"defaults": {}, "overrides": overrides})
            if parts[:1] != [prefix]:
                raise Error(404, "NotFoundException", f"no route for {self.command} {self.path}")
            with lock:
                self.route(parts[1:])
        except Error as e:
            self.reply(e.code, {"error": {"message": e.message, "type": e.kind, "code": e.code}})
        except (NoSuchTableError, NoSuchNamespaceError) as e:
            kind = "NoSuchTableException" if isinstance(e, NoSuchTableError) else "NoSuchNamespaceException"
            self.reply(404, {"error": {"message": str(e), "type": kind, "code": 404}})
        except (TableAlreadyExistsError, NamespaceAlreadyExistsError) as e:
            self.reply(409, {"error": {"message": str(e), "type": "AlreadyExistsException", "code": 409}})
        except CommitFailedException as e:
            self.reply(409, {"error": {"message": str(e), "type": "CommitFailedException", "code": 409}})
        except Exception as e:  # noqa: BLE001 - the client must see every failure
            print(f"{self.command} {self.path}: {e!r}", file=sys.stderr, flush=True)
            self.reply(500, {"error": {"message": repr(e), "type": "ServerError", "code": 500}})

    def token(self):
        form = urllib.parse.parse_qs(self.body().decode())
        given = f"{form.get('client_id', [''])[0]}:{form.get('client_secret', [''])[0]}"
        if form.get("grant_type") != ["client_credentials"] or given != credential:
            return self.reply(401, {"error": "invalid_client", "error_description": "bad client credentials"})
        token = secrets.token_hex(16)
        tokens.add(token)
        self.reply(200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 3600,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        })

    def route(self, parts):
        m = self.command
        if parts == ["namespaces"]:
            if m == "GET":
                return self.reply(200, {"namespaces": [list(n) for n in catalog.list_namespaces()]})
            req = json.loads(self.body())
            catalog.create_namespace(tuple(req["namespace"]), req.get("properties") or {})
            return self.reply(200, {"namespace": req["namespace"], "properties": req.get("properties") or {}})
        if len(parts) == 2 and parts[0] == "namespaces":
            ns = namespace(parts[1])
            props = catalog.load_namespace_properties(ns)
            if m == "HEAD":
                return self.reply(204)
            return self.reply(200, {"namespace": list(ns), "properties": props})
        if len(parts) == 3 and parts[2] == "tables":
            ns = namespace(parts[1])
            if m == "GET":
                ids = [{"namespace": list(i[:-1]), "name": i[-1]} for i in catalog.list_tables(ns)]
                return self.reply(200, {"identifiers": ids})
            raw = json.loads(self.body())
            for optional in ("location", "partition-spec", "write-order"):
                raw.setdefault(optional, None)
            # The spec's UnboundPartitionSpec may leave ids out; the server assigns them.
            spec = raw["partition-spec"]
            if spec is not None:
                spec.setdefault("spec-id", 0)
                for i, field in enumerate(spec.get("fields", [])):
                    field.setdefault("field-id", 1000 + i)
            req = CreateTableRequest.model_validate(raw)
            table = catalog.create_table(
                ns + (req.name,),
                schema=req.table_schema,
                location=req.location,
                partition_spec=req.partition_spec or UNPARTITIONED_PARTITION_SPEC,
                sort_order=req.write_order or UNSORTED_SORT_ORDER,
                properties=req.properties,
            )
            return self.load_result(table)
        if len(parts) == 4 and parts[2] == "tables":
            ident = namespace(parts[1]) + (urllib.parse.unquote(parts[3]),)
            table = catalog.load_table(ident)
            if m == "HEAD":
                return self.reply(204)
            if m == "GET":
                return self.load_result(table)
            req = json.loads(self.body())
            req["identifier"] = {"namespace": list(ident[:-1]), "name": ident[-1]}
            commit = CommitTableRequest.model_validate(req)
            resp = catalog.commit_table(table, commit.requirements, commit.updates)
            return self.reply(200, resp.model_dump_json().encode())
        raise Error(404, "NotFoundException", f"no route for {m} {self.path}")

    def load_result(self, table):
        resp = TableResponse(metadata_location=table.metadata_location, metadata=table.metadata, config={})
        self.reply(200, resp.model_dump_json().encode())

    do_GET = do_POST = do_HEAD = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
print("listening", flush=True)
server.serve_forever()
