"""An XMPP user logs in to a bridge's network in steps, with the gateway's
ad-hoc command (XEP-0050) driven by slixmpp's xep_0050 plugin and its
session API (start_command, continue_command, cancel_command):

  - the gateway's disco#info announces the commands, and its command
    list holds the login command (jabber:iq:register);
  - a login canceled after its first step ends as canceled;
  - a login with the password (wrong, told by a note, then right) and a
    code (wrong, then right) completes;
  - the gateway then subscribes to the user's presence, and one to one
    messages go both ways;
  - a login with a QR code shows its data in a fixed field and in a text
    field; the script prints it on a line "QR <data>" for the test to
    scan, and the login completes once it is scanned."""

import asyncio

from slixmpp.xmlstream import tostring

import xmpp_common as xc

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NODE = "jabber:iq:register"


class Command:
    """One run of a command through slixmpp's session API: each answer,
    result or error, lands in a future."""

    def __init__(self, xmpp, jid, node):
        self.xmpp, self.jid, self.node = xmpp, jid, node
        self.session = {"next": self._answer, "error": self._answer}
        self.answer = None

    def _answer(self, iq, session):
        self.session = session
        if not self.answer.done():
            self.answer.set_result(iq)

    async def _wait(self, what):
        try:
            return await asyncio.wait_for(self.answer, 40)
        except asyncio.TimeoutError:
            raise xc.CheckFailed("no answer to %s" % what)

    async def start(self):
        self.answer = asyncio.get_running_loop().create_future()
        self.xmpp["xep_0050"].start_command(self.jid, self.node, self.session)
        return await self._wait("the command's execution")

    async def go(self, values=None, action="next"):
        self.answer = asyncio.get_running_loop().create_future()
        payload = None
        if values is not None:
            payload = self.xmpp["xep_0004"].make_form(ftype="submit")
            for var, value in values.items():
                payload.add_field(var=var, value=value)
        self.session["payload"] = payload
        adhoc = self.xmpp["xep_0050"]
        {"next": adhoc.continue_command, "cancel": adhoc.cancel_command, "complete": adhoc.complete_command}[action](self.session)
        return await self._wait("%s with %s" % (action, values))


def status(iq):
    xc.check(iq["type"] == "result", "an error: %s" % tostring(iq.xml))
    return iq["command"]["status"]


def fields(iq):
    """The answer's form fields: var -> (type, values, labels of options)."""
    out = {}
    for f in iq.xml.iter("{%s}field" % NS_DATA):
        values = [v.text or "" for v in f.findall("{%s}value" % NS_DATA)]
        options = [o.findtext("{%s}value" % NS_DATA) for o in f.findall("{%s}option" % NS_DATA)]
        out[f.get("var", "")] = (f.get("type"), values, options)
    return out


def step(iq, *want, note=None):
    """Checks that iq is an executing step with the fields want and, if
    note is set, an error note holding it (else no note); returns its
    fields."""
    xc.check(status(iq) == "executing", "want a step, got %s" % tostring(iq.xml))
    fs = fields(iq)
    for var in want:
        xc.check(var in fs, "no field %s in %s" % (var, tostring(iq.xml)))
    notes = iq["command"]["notes"]
    if note is None:
        xc.check(not notes, "unexpected notes %s" % notes)
    else:
        xc.check(any(t == "error" and note in text for t, text in notes), "want an error note with %r, got %s" % (note, notes))
    return fs


async def main(args):
    loop = asyncio.get_running_loop()
    gw, contact = args.gateway, "bob@" + args.gateway
    c = xc.Client(args, args.jid, args.password)
    for plugin in ("xep_0004", "xep_0050"):
        c.xmpp.register_plugin(plugin)
    subscribed = loop.create_future()
    welcome = loop.create_future()

    def on_presence_subscribe(p):
        if p["from"].bare == gw and not subscribed.done():
            subscribed.set_result(True)

    def on_message(m):
        if m["from"].bare == contact and m["body"] == "welcome" and not welcome.done():
            welcome.set_result(True)

    c.xmpp.add_event_handler("presence_subscribe", on_presence_subscribe)
    c.xmpp.add_event_handler("message", on_message)
    await c.start()
    x = c.xmpp

    # Discovery.
    info = await x["xep_0030"].get_info(jid=gw, timeout=10)
    xc.check(NS_COMMANDS in info["disco_info"]["features"], "the gateway does not announce %s" % NS_COMMANDS)
    items = await x["xep_0050"].get_commands(gw, timeout=10)
    nodes = [node for _, node, _ in items["disco_items"]["items"]]
    xc.check(NODE in nodes, "the command list %s lacks %s" % (nodes, NODE))
    print("commands: %s" % nodes, flush=True)

    # Canceled after the first step.
    cmd = Command(x, gw, NODE)
    fs = step(await cmd.start(), "method")
    xc.check(fs["method"][0] == "list-single" and fs["method"][2] == ["password", "qr"], "the method field: %s" % (fs["method"],))
    iq = await cmd.go(action="cancel")
    xc.check(status(iq) == "canceled", "want canceled, got %s" % tostring(iq.xml))
    print("canceled", flush=True)

    # The password and a code, each wrong first.
    cmd = Command(x, gw, NODE)
    step(await cmd.start(), "method")
    fs = step(await cmd.go({"method": "password"}), "username", "password")
    xc.check(fs["password"][0] == "text-private", "the password field: %s" % (fs["password"],))
    step(await cmd.go({"username": args.username, "password": "wrong"}), "password", note="credentials refused")
    step(await cmd.go({"username": args.username, "password": args.network_password}), "code")
    step(await cmd.go({"code": "000000"}), "code", note="000000")
    iq = await cmd.go({"code": args.code}, action="complete")
    xc.check(status(iq) == "completed", "want completed, got %s" % tostring(iq.xml))
    print("logged in with the code: %s" % iq["command"]["notes"], flush=True)

    # slixmpp approves the gateway's subscription: the server sends the
    # user's presence to the gateway, which keeps the login's session.
    await asyncio.wait_for(subscribed, 20)
    x.send_message(mto=contact, mbody="hello over the login", mtype="chat")
    await asyncio.wait_for(welcome, 30)
    print("one to one both ways with %s" % contact, flush=True)

    # A QR code, scanned by the test.
    cmd = Command(x, gw, NODE)
    step(await cmd.start(), "method")
    iq = await cmd.go({"method": "qr"})
    fs = step(iq, "qr")
    data = fs["qr"][1][0]
    fixed = [f for f in fs.values() if f[0] == "fixed"]
    xc.check(fixed and fixed[0][1] == [data], "no fixed field with the QR code's data: %s" % tostring(iq.xml))
    print("QR %s" % data, flush=True)
    iq = await cmd.go()
    while status(iq) == "executing":
        # Not scanned within the gateway's wait: shown again, with a note.
        print("shown again: %s" % iq["command"]["notes"], flush=True)
        iq = await cmd.go()
    xc.check(status(iq) == "completed", "want completed, got %s" % tostring(iq.xml))
    print("logged in with the QR code", flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--gateway", required=True, help="the bridge's domain")
    p.add_argument("--username", required=True, help="the user's name on the network")
    p.add_argument("--network-password", required=True)
    p.add_argument("--code", required=True, help="the code the network asks for")
    p.set_defaults(timeout=80)
    xc.run(main, p.parse_args())
