"""Helpers shared by the multi-user chat scripts (muc_*.py).

Every session records each presence and message it receives, as raw XML,
so that a script can check exactly what each occupant got, in order: it
sends raw stanzas (slixmpp's MUC plugin would hide what the room sent) and
waits, with a deadline, for what it expects. To check that something did
NOT arrive, a script first runs a barrier: a request the room answers
after everything it sent before, so that anything earlier is recorded."""

import asyncio

from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET, tostring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import im_common as im
import xmpp_common as xc

NS_CLIENT = "jabber:client"
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_ADMIN = NS_MUC + "#admin"
NS_OWNER = NS_MUC + "#owner"
NS_REQUEST = NS_MUC + "#request"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_SID = "urn:xmpp:sid:0"
NS_OCCUPANT = "urn:xmpp:occupant-id:0"
NS_DELAY = "urn:xmpp:delay"
NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_PING = "urn:xmpp:ping"
NS_VCARD = "vcard-temp"
NS_VCARD_UPDATE = "vcard-temp:x:update"
NS_REGISTER = "jabber:iq:register"
NS_CONFERENCE = "jabber:x:conference"
NS_MODERATE = "urn:xmpp:message-moderate:1"
NS_RETRACT = "urn:xmpp:message-retract:1"


def base_parser(description):
    """The common connection options, the accounts as --user JID PASSWORD
    and the conference service."""
    p = im.base_parser(description)
    p.add_argument("--service", required=True, help="the conference service, e.g. conference.localhost")
    return p


def accounts(args):
    """Accounts by local part: {'alice': ('alice@localhost', 'pw'), ...}."""
    return {j.split("@", 1)[0]: (j, pw) for j, pw in args.user}


def xml(s):
    """An element from XML text, for payloads written as they go on the wire."""
    return ET.fromstring(s) if isinstance(s, str) else s


def q(s):
    """Quotes text for an XML attribute or element."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;").replace('"', "&quot;")


# --- reading what arrived -------------------------------------------------

class Rx:
    """One received presence or message."""

    def __init__(self, el):
        self.xml = el
        self.kind = el.tag.split("}", 1)[-1]
        self.frm = el.get("from", "")
        self.to = el.get("to", "")
        self.type = el.get("type", "")
        self.id = el.get("id", "")

    @property
    def bare_from(self):
        return self.frm.split("/", 1)[0].lower()

    @property
    def nick(self):
        return self.frm.split("/", 1)[1] if "/" in self.frm else ""

    def child(self, ns, local):
        return self.xml.find("{%s}%s" % (ns, local))

    def __repr__(self):
        return tostring(self.xml)


def codes(rx):
    """The muc#user status codes of a stanza, as a set of strings."""
    return {s.get("code") for s in rx.xml.findall("{%s}x/{%s}status" % (NS_USER, NS_USER))}


def item(rx):
    """The attributes of the muc#user <item/>, {} if none."""
    it = rx.xml.find("{%s}x/{%s}item" % (NS_USER, NS_USER))
    return dict(it.attrib) if it is not None else {}


def item_child_text(rx, local):
    e = rx.xml.find("{%s}x/{%s}item/{%s}%s" % (NS_USER, NS_USER, NS_USER, local))
    return e.text if e is not None else None


def actor(rx):
    e = rx.xml.find("{%s}x/{%s}item/{%s}actor" % (NS_USER, NS_USER, NS_USER))
    return e.get("nick") if e is not None else None


def body(rx):
    e = rx.xml.find("{%s}body" % NS_CLIENT)
    return e.text if e is not None else None


def subject(rx):
    e = rx.xml.find("{%s}subject" % NS_CLIENT)
    return None if e is None else (e.text or "")


def is_subject(rx):
    """The message that ends a join (XEP-0045 §7.2.15)."""
    return rx.kind == "message" and rx.type == "groupchat" and subject(rx) is not None and body(rx) is None


def error_condition(el):
    """The defined condition of a stanza error element's parent, or None."""
    e = el.find("{%s}error" % NS_CLIENT)
    if e is None:
        return None
    for c in e:
        if c.tag.startswith("{%s}" % NS_STANZAS) and not c.tag.endswith("}text"):
            return c.tag.split("}", 1)[1]
    return None


def stanza_id(rx):
    e = rx.child(NS_SID, "stanza-id")
    return (e.get("id"), e.get("by")) if e is not None else (None, None)


def occupant_id(rx):
    e = rx.child(NS_OCCUPANT, "occupant-id")
    return e.get("id") if e is not None else None


def delay(rx):
    e = rx.child(NS_DELAY, "delay")
    return (e.get("stamp"), e.get("from")) if e is not None else (None, None)


def read_form(x):
    """A data form as {var: [values]}, with 'FORM_TYPE' kept, and the
    types as {var: type}."""
    values, types = {}, {}
    for f in x.findall("{%s}field" % NS_DATA):
        var = f.get("var")
        values[var] = [v.text or "" for v in f.findall("{%s}value" % NS_DATA)]
        types[var] = f.get("type")
    return values, types


def form(ftype, fields, form_type=None):
    """A data form element: fields is a list of (var, value or [values])."""
    x = ET.Element("{%s}x" % NS_DATA, type=ftype)
    if form_type:
        f = ET.SubElement(x, "{%s}field" % NS_DATA, var="FORM_TYPE", type="hidden")
        ET.SubElement(f, "{%s}value" % NS_DATA).text = form_type
    for var, vals in fields:
        f = ET.SubElement(x, "{%s}field" % NS_DATA, var=var)
        for v in vals if isinstance(vals, (list, tuple)) else [vals]:
            ET.SubElement(f, "{%s}value" % NS_DATA).text = v
    return x


# --- predicates -------------------------------------------------------------

def presence_from(full, ptype=""):
    return lambda r: r.kind == "presence" and r.frm == full and r.type == ptype


def self_presence(room, ptype=""):
    """A presence from room (any nick) with status 110."""
    room = room.lower()
    return lambda r: r.kind == "presence" and r.bare_from == room and r.nick != "" and r.type == ptype and "110" in codes(r)


def error_from(room, kind):
    room = room.lower()
    return lambda r: r.kind == kind and r.type == "error" and r.bare_from == room


def groupchat_body(text):
    return lambda r: r.kind == "message" and r.type == "groupchat" and body(r) == text


def with_body(text):
    return lambda r: r.kind == "message" and body(r) == text


# --- sessions ---------------------------------------------------------------

class Session:
    """A logged-in client recording every presence and message it gets."""

    def __init__(self, args, jid, password, label=None):
        self.client = xc.Client(args, jid, password)
        self.xmpp = x = self.client.xmpp
        self.label = label or jid
        self.rx = []
        self._changed = asyncio.Event()
        for kind in ("presence", "message"):
            x.register_handler(Callback("muc record %s" % kind, MatchXPath("{%s}%s" % (NS_CLIENT, kind)), self._record))

    def _record(self, stanza):
        self.rx.append(Rx(stanza.xml))
        self._changed.set()

    async def start(self):
        await self.client.start()
        return self

    async def close(self):
        await self.client.close()

    @property
    def jid(self):
        return self.xmpp.boundjid.full

    @property
    def bare(self):
        return self.xmpp.boundjid.bare

    def mark(self):
        """A position in what was received, for since=."""
        return len(self.rx)

    def since(self, mark, pred=None):
        return [r for r in self.rx[mark:] if pred is None or pred(r)]

    async def wait(self, pred, what, since=0, timeout=10.0):
        """Waits for a stanza received after mark since that pred accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for r in self.rx[since:]:
                if pred(r):
                    return r
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                got = "\n  ".join(repr(r) for r in self.rx[since:]) or "(nothing)"
                raise xc.CheckFailed("%s: no %s within %.0f s; received since:\n  %s" % (self.label, what, timeout, got))
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def wait_all(self, pred, n, what, since=0, timeout=10.0):
        """Waits until n stanzas pred accepts have arrived since mark."""
        await self.wait(lambda _: len(self.since(since, pred)) >= n, "%d x %s" % (n, what), since, timeout)
        return self.since(since, pred)

    def none(self, pred, what, since=0):
        """Checks that nothing pred accepts arrived since mark (run a
        barrier first)."""
        bad = self.since(since, pred)
        xc.check(not bad, "%s received %s: %s" % (self.label, what, bad))

    async def barrier(self, to):
        """Asks to (a room, or the service) for its disco#info: the answer
        comes after everything that entity sent this session before it
        handled the request."""
        iq = self.xmpp.Iq()
        iq["type"], iq["to"] = "get", to
        iq.xml.append(ET.Element("{%s}query" % NS_DISCO_INFO))
        try:
            await iq.send(timeout=10)
        except IqError:
            pass

    # --- sending raw stanzas ---

    def presence(self, to, ptype=None, children=(), status=None):
        p = self.xmpp.Presence()
        p.xml.set("to", to)
        if ptype:
            p.xml.set("type", ptype)
        if status is not None:
            ET.SubElement(p.xml, "{%s}status" % NS_CLIENT).text = status
        for c in children:
            p.xml.append(xml(c))
        p.send()

    def message(self, to, mtype=None, text=None, mid=None, children=(), frm=None, subj=None):
        m = self.xmpp.Message()
        m.xml.set("to", to)
        if mtype:
            m.xml.set("type", mtype)
        if mid:
            m.xml.set("id", mid)
        if frm:
            m.xml.set("from", frm)
        if subj is not None:
            ET.SubElement(m.xml, "{%s}subject" % NS_CLIENT).text = subj
        if text is not None:
            ET.SubElement(m.xml, "{%s}body" % NS_CLIENT).text = text
        for c in children:
            m.xml.append(xml(c))
        m.send()

    def say(self, room, text, mid=None, children=()):
        self.message(room, "groupchat", text, mid=mid, children=children)

    async def iq(self, to, itype, payload=None):
        """Sends an IQ and returns the result's XML; an error fails."""
        iq = self.xmpp.Iq()
        iq["type"], iq["to"] = itype, to
        if payload is not None:
            iq.xml.append(xml(payload))
        try:
            res = await iq.send(timeout=10)
        except IqError as e:
            raise xc.CheckFailed("%s: %s to %s refused: %s" % (self.label, itype, to, e.iq))
        return res.xml

    async def iq_error(self, to, itype, payload, cond, what):
        """Sends an IQ that must fail with cond; returns the error IQ."""
        iq = self.xmpp.Iq()
        iq["type"], iq["to"] = itype, to
        if payload is not None:
            iq.xml.append(xml(payload))
        try:
            res = await iq.send(timeout=10)
        except IqError as e:
            got = error_condition(e.iq.xml)
            xc.check(got == cond, "%s: %s answered %s, want %s: %s" % (self.label, what, got, cond, e.iq))
            print("%s: %s -> %s" % (self.label, what, cond), flush=True)
            return e.iq.xml
        raise xc.CheckFailed("%s: %s succeeded, want error %s: %s" % (self.label, what, cond, res))

    # --- rooms ---

    def join_presence(self, room, nick, password=None, history=None, muc=True):
        x = ""
        if muc:
            inner = ""
            if password is not None:
                inner += "<password>%s</password>" % q(password)
            if history is not None:
                inner += "<history %s/>" % " ".join("%s='%s'" % (k, q(str(v))) for k, v in history.items())
            x = "<x xmlns='%s'>%s</x>" % (NS_MUC, inner)
        self.presence("%s/%s" % (room, nick), children=[x] if x else [])

    async def join(self, room, nick, password=None, history=None, muc=True, subject=True):
        """Enters room as nick and returns what the room sent this session
        during the join, in order, up to the subject (or the self-presence
        when subject is False). A refusal fails the check."""
        m = self.mark()
        self.join_presence(room, nick, password, history, muc)
        sp = self_presence(room)
        err = error_from(room, "presence")
        first = await self.wait(lambda r: sp(r) or err(r), "self-presence from %s" % room, since=m)
        if first.type == "error":
            raise xc.CheckFailed("%s: joining %s as %r refused: %s" % (self.label, room, nick, first))
        if subject:
            await self.wait(lambda r: is_subject(r) and r.bare_from == room.lower(), "subject from %s" % room, since=m)
        return [r for r in self.since(m) if r.bare_from == room.lower()]

    async def join_refused(self, room, nick, cond, password=None, what=None):
        """Tries to enter room as nick and checks the refusal's condition."""
        m = self.mark()
        self.join_presence(room, nick, password)
        sp = self_presence(room)
        err = error_from(room, "presence")
        r = await self.wait(lambda r: sp(r) or err(r), "answer to the join of %s" % room, since=m)
        what = what or "joining %s as %r" % (room, nick)
        xc.check(r.type == "error", "%s: %s succeeded, want %s: %s" % (self.label, what, cond, r))
        got = error_condition(r.xml)
        xc.check(got == cond, "%s: %s refused with %s, want %s: %s" % (self.label, what, got, cond, r))
        print("%s: %s -> %s" % (self.label, what, cond), flush=True)
        return r

    async def leave(self, room, nick):
        m = self.mark()
        self.presence("%s/%s" % (room, nick), "unavailable")
        await self.wait(self_presence(room, "unavailable"), "own unavailable presence from %s" % room, since=m)

    async def config_form(self, room):
        res = await self.iq(room, "get", "<query xmlns='%s'/>" % NS_OWNER)
        x = res.find("{%s}query/{%s}x" % (NS_OWNER, NS_DATA))
        xc.check(x is not None, "%s: no configuration form in %s" % (self.label, tostring(res)))
        return read_form(x)

    async def configure(self, room, fields):
        await self.iq(room, "set", owner_query(fields))

    async def create(self, room, nick, fields=()):
        """Creates a room as its owner: join (201), then the configuration
        form submitted with fields (an instant room when empty)."""
        got = await self.join(room, nick)
        sp = [r for r in got if self_presence(room)(r)]
        xc.check(sp and "201" in codes(sp[0]), "%s: creating %s: no status 201 in %s" % (self.label, room, sp))
        await self.configure(room, list(fields))
        return got

    async def admin_set(self, room, items):
        """Applies muc#admin items, each a dict of attributes with an
        optional 'reason'."""
        await self.iq(room, "set", admin_query(items))

    async def admin_list(self, room, **attrs):
        res = await self.iq(room, "get", admin_query([attrs]))
        out = []
        for i in res.findall("{%s}query/{%s}item" % (NS_ADMIN, NS_ADMIN)):
            d = dict(i.attrib)
            r = i.find("{%s}reason" % NS_ADMIN)
            if r is not None:
                d["reason"] = r.text
            out.append(d)
        return out

    async def disco_info(self, to, node=None):
        qe = ET.Element("{%s}query" % NS_DISCO_INFO)
        if node:
            qe.set("node", node)
        res = await self.iq(to, "get", qe)
        query = res.find("{%s}query" % NS_DISCO_INFO)
        ids = [dict(i.attrib) for i in query.findall("{%s}identity" % NS_DISCO_INFO)]
        feats = {f.get("var") for f in query.findall("{%s}feature" % NS_DISCO_INFO)}
        info = {}
        for x in query.findall("{%s}x" % NS_DATA):
            vals, _ = read_form(x)
            if vals.get("FORM_TYPE") == [NS_MUC + "#roominfo"]:
                info = vals
        return ids, feats, info


def owner_query(fields):
    """A submitted room configuration form: fields is a list of (var,
    value or [values])."""
    qe = ET.Element("{%s}query" % NS_OWNER)
    qe.append(form("submit", fields, form_type=NS_MUC + "#roomconfig"))
    return qe


def admin_query(items):
    qe = ET.Element("{%s}query" % NS_ADMIN)
    for it in items:
        it = dict(it)
        reason = it.pop("reason", None)
        e = ET.SubElement(qe, "{%s}item" % NS_ADMIN, it)
        if reason is not None:
            ET.SubElement(e, "{%s}reason" % NS_ADMIN).text = reason
    return qe


async def connect(args, who, label=None, resource=None):
    """Logs in one of the accounts by local part."""
    j, pw = accounts(args)[who]
    if resource:
        j += "/" + resource
    return await Session(args, j, pw, label or who).start()


async def close_all(*sessions):
    await asyncio.gather(*(s.close() for s in sessions))


def run(main, args):
    xc.run(main, args)
