#!/usr/bin/env python3
"""A toy company directory as an Ambrosia application service.

Standard library only. Three people, dir-alice, dir-bob and dir-carol at
--domain, are accounts the service creates through Ambrosia's HTTP API (if
missing) and makes available with a status. Ambrosia sends the service, in
transactions, what they receive; the service answers through the API:

  * a subscription request is approved, and answered with one of its own;
  * "who is carol?" gets a line about carol;
  * an XEP-0335 JSON request, {"op": "lookup", "name": "carol"} in a
    <json xmlns='urn:xmpp:json:0'> container, gets a JSON answer in one;
  * "away" makes the person addressed away, "back" available again;
  * "note TEXT" leaves a note for the person (silently); "notes" counts them;
  * anything else gets a short help.

Its `message` hook refuses, before delivery, every message to one of them
that contains the word given by --forbidden, with policy-violation.

Exactly once. Every transaction is recorded, with the state changes it
made (notes, presence), in the append-only journal --state, fsynced before
Ambrosia gets its 200. A transaction id already in the journal is
acknowledged without being processed again: Ambrosia sends a transaction
again when it got no answer, e.g. when the service was killed after the
write and before the answer. Replies sent through the API are side effects:
when processing fails half way (the answer is then 500), the retry may send
some of them twice; the directory's state changes only once.

Every call from Ambrosia must carry its token (--server-token); others get 401.

  python3 directory.py --api http://127.0.0.1:5280 --listen 127.0.0.1:9000 \\
      --token SERVICE-TOKEN --server-token SERVER-TOKEN --domain localhost \\
      --state directory.journal

See README.md here for the matching [[appservice]] section of Ambrosia's
configuration.
"""

import argparse
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PEOPLE = {
    "alice": {"name": "Alice Martin", "title": "head of research", "office": "2.14"},
    "bob": {"name": "Bob Okafor", "title": "site reliability engineer", "office": "1.03"},
    "carol": {"name": "Carol Nguyen", "title": "chief financial officer", "office": "3.01"},
}
GREETING = "Directory: ask me 'who is bob?'"
HELP = "Ask me 'who is alice?', send a JSON lookup, 'note TEXT', 'notes', 'away' or 'back'."


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


class API:
    """Ambrosia's HTTP API, called with the service's token."""

    def __init__(self, base, token):
        self.base, self.token = base.rstrip("/"), token

    def call(self, method, path, body=None, ok=(200, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + "/api/v1" + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return None
            raise RuntimeError("%s %s: %d %s" % (method, path, e.code, e.read().decode(errors="replace")))

    def send(self, sender, to, body=None, js=None):
        msg = {"from": sender, "to": to, "type": "chat"}
        if body is not None:
            msg["body"] = body
        if js is not None:
            msg["json"] = js
        self.call("POST", "/send", msg)

    def presence(self, user, show="", status=GREETING):
        p = {"available": True, "status": status}
        if show:
            p["show"] = show
        self.call("PUT", "/users/%s/presence" % urllib.parse.quote(user), p)


class Directory:
    def __init__(self, args):
        self.api = API(args.api, args.token)
        self.domain, self.forbidden, self.name = args.domain, args.forbidden.lower(), args.name
        self.users = {"dir-%s@%s" % (p, args.domain): p for p in PEOPLE}
        self.lock = threading.Lock()  # one transaction at a time
        self.done = set()  # transaction ids in the journal
        self.notes = {u: [] for u in self.users}
        self.shows = {u: "" for u in self.users}
        self.crash_after = args.crash_after
        self.journal = self.open_journal(args.state)

    # -- the journal: one JSON line per transaction, replayed at start --

    def open_journal(self, path):
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            # A kill during a write leaves a partial last line: that
            # transaction was not answered, and comes again.
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                self.apply(json.loads(line))
            if end < len(data):
                with open(path, "r+b") as f:
                    f.truncate(end)
            log("journal: %d transactions replayed" % len(self.done))
        return open(path, "ab")

    def apply(self, record):
        self.done.add(record["txn"])
        for ev in record["events"]:
            if "note" in ev:
                self.notes[ev["user"]].append(ev["note"])
            if "show" in ev:
                self.shows[ev["user"]] = ev["show"]

    def record(self, record):
        self.journal.write(json.dumps(record).encode() + b"\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())
        self.apply(record)

    # -- what Ambrosia calls --

    def transaction(self, txn, events):
        with self.lock:
            if txn in self.done:
                log("duplicate transaction %s: processed already, acknowledged again" % txn)
                return
            changes = [self.event(ev) for ev in events]
            self.record({"txn": txn, "events": changes})
            if self.crash_after and len(self.done) >= self.crash_after:
                log("crashing after recording transaction %s (--crash-after)" % txn)
                os._exit(9)

    def event(self, ev):
        """Acts on one event; returns what the journal keeps of it."""
        user, sender = ev.get("user", ""), ev.get("from", "")
        rec = {"id": ev["id"], "type": ev["type"], "user": user, "from": sender}
        if user not in self.users:
            return rec  # e.g. a watched user's login
        if ev["type"] == "subscription" and ev["subscription"] == "subscribe":
            contact = sender.split("/")[0]
            for kind in ("subscribed", "subscribe"):
                self.api.call("POST", "/send", {"from": user, "stanza": "<presence type='%s' to='%s'/>" % (kind, contact)})
        elif ev["type"] == "iq":
            self.refuse_iq(user, ev["stanza"])
        elif ev["type"] == "message":
            msg = ev["message"]
            rec["message_id"] = msg.get("id", "")
            if msg.get("type") != "error":
                rec.update(self.message(user, sender, msg))
        return rec

    def message(self, user, sender, msg):
        me = self.users[user]
        text = msg.get("body", "").strip()
        if isinstance(msg.get("json"), dict):
            req = msg["json"]
            if req.get("op") != "lookup":
                self.api.send(user, sender, js={"op": req.get("op"), "error": "unknown op"})
            else:
                self.api.send(user, sender, js=self.lookup(str(req.get("name", ""))))
        elif text.lower().startswith("who is "):
            self.api.send(user, sender, body=self.describe(text[7:].strip(" ?").lower()))
        elif text.lower() in ("away", "back"):
            show = "away" if text.lower() == "away" else ""
            status = "Away (asked by %s)" % sender.split("/")[0] if show else GREETING
            self.api.presence(user, show, status)
            return {"show": show}
        elif text.startswith("note "):
            return {"note": text[5:]}
        elif text == "notes":
            n = len(self.notes[user])
            self.api.send(user, sender, body="%d notes for %s" % (n, me) + (", the last: %s" % self.notes[user][-1] if n else ""))
        else:
            self.api.send(user, sender, body=HELP)
        return {}

    def lookup(self, name):
        key = name.lower().removeprefix("dir-").split("@")[0]
        if key not in PEOPLE:
            return {"op": "lookup", "name": name, "found": False}
        return dict(PEOPLE[key], op="lookup", found=True, jid="dir-%s@%s" % (key, self.domain))

    def describe(self, name):
        r = self.lookup(name)
        if not r["found"]:
            return "I know only %s." % ", ".join(sorted(PEOPLE))
        return "%s is %s, %s, office %s (%s)." % (name, r["name"], r["title"], r["office"], r["jid"])

    def refuse_iq(self, user, stanza):
        iq = ET.fromstring(stanza)
        if iq.get("type") in ("get", "set"):
            reply = ET.Element("iq", {"type": "error", "to": iq.get("from", ""), "id": iq.get("id", "")})
            err = ET.SubElement(reply, "error", {"type": "cancel"})
            ET.SubElement(err, "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable")
            self.api.call("POST", "/send", {"from": user, "stanza": ET.tostring(reply, encoding="unicode")})

    def hook(self, event, ev):
        """Decides about a message before delivery."""
        to = ev.get("to", "").split("/")[0]
        body = (ev.get("message") or {}).get("body", "")
        if event == "message" and to in self.users and self.forbidden and self.forbidden in body.lower():
            return {"decision": "deny", "error": {"condition": "policy-violation",
                                                  "text": "The directory does not take messages about %s." % self.forbidden}}
        return {"decision": "allow"}

    def keep_available(self, every):
        """Sets the presence again of a user who lost their session: a
        restart of Ambrosia ends the sessions, and no event tells of it."""
        while True:
            time.sleep(every)
            for user in self.users:
                try:
                    got = self.api.call("GET", "/users/%s/presence" % urllib.parse.quote(user))
                    if not any(p["resource"] == self.name for p in got["presence"]):
                        with self.lock:
                            show = self.shows[user]
                            self.api.presence(user, show, "Away" if show else GREETING)
                        log("%s was offline: available again" % user)
                except (OSError, RuntimeError) as e:
                    log("presence check of %s: %s" % (user, e))

    def start(self):
        for _ in range(60):  # Ambrosia may be starting too
            try:
                self.api.call("GET", "/openapi.json")
                break
            except urllib.error.URLError:
                time.sleep(0.5)
        for user in self.users:
            self.api.call("POST", "/users", {"jid": user}, ok=(204, 409))
            show = self.shows[user]
            self.api.presence(user, show, "Away" if show else GREETING)


def handler(directory, server_token):
    class Handler(BaseHTTPRequestHandler):
        def answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def serve(self, method):
            auth = self.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(auth, b"Bearer " + server_token.encode()):
                return self.answer(401, {"error": "bad token"})
            parts = self.path.strip("/").split("/")
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if method == "PUT" and len(parts) == 2 and parts[0] == "transactions":
                    directory.transaction(urllib.parse.unquote(parts[1]), body["events"])
                    return self.answer(200, {})
                if method == "POST" and len(parts) == 2 and parts[0] == "hooks":
                    return self.answer(200, directory.hook(parts[1], body["event"]))
            except Exception as e:  # Ambrosia sends the transaction again
                log("error:", repr(e))
                return self.answer(500, {"error": str(e)})
            self.answer(404, {"error": "no such path"})

        def do_PUT(self):
            self.serve("PUT")

        def do_POST(self):
            self.serve("POST")

        def log_message(self, *args):
            pass

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api", required=True, help="Ambrosia's HTTP API, e.g. http://127.0.0.1:5280")
    p.add_argument("--listen", required=True, help="host:port of this service (the url of [[appservice]])")
    p.add_argument("--token", required=True, help="the service's token, to call the API")
    p.add_argument("--server-token", required=True, help="Ambrosia's token, on every call it makes")
    p.add_argument("--domain", required=True)
    p.add_argument("--name", default="directory", help="its [[appservice]] name: its users' resource")
    p.add_argument("--state", default="directory.journal", help="the journal of processed transactions")
    p.add_argument("--forbidden", default="lottery", help="the word the message hook refuses")
    p.add_argument("--check-every", type=float, default=30, help="seconds between checks of the users' sessions")
    p.add_argument("--crash-after", type=int, default=0, help=argparse.SUPPRESS)  # tests: die unanswered
    args = p.parse_args()

    d = Directory(args)
    host, port = args.listen.rsplit(":", 1)
    httpd = ThreadingHTTPServer((host, int(port)), handler(d, args.server_token))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    d.start()  # its presence makes Ambrosia call the hooks: serve first
    threading.Thread(target=d.keep_available, args=(args.check_every,), daemon=True).start()
    print("READY", flush=True)
    log("directory of %s listening on %s" % (", ".join(d.users), args.listen))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
