"""An XMPP user registers with Ambrosia's IRC bridge in transport mode
(XEP-0100, XEP-0077) and talks with a plain IRC client:

  - the gateway's disco#info says gateway/irc and jabber:iq:register;
  - the registration form asks for a nick, the server password and a
    NickServ password;
  - a wrong server password is refused with not-authorized and a text that
    says so; the right one is accepted, and the gateway subscribes to the
    user's presence;
  - before that, joining a channel is refused with registration-required;
  - the IRC connection of the registration stays for the user, whose
    presence follows: the user is on IRC under the nick registered (not
    under another, as a second login at once would be while the server
    has not yet taken the first one's QUIT), and one to one messages
    cross both ways;
  - the IRC connection ends when the user goes offline, and the bridge
    logs in again when the user is back;
  - the form then shows the registration;
  - unregistering (<remove/>) ends the IRC connection, takes the gateway
    out of the user's presence subscriptions, and a message to IRC is then
    refused with registration-required."""

import asyncio

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET, tostring

import irc_common as ic
import muc_common as mc
import xmpp_common as xc

NS_REGISTER = "jabber:iq:register"
NS_ROSTER = "jabber:iq:roster"


async def iq(s, to, itype, payload, timeout=40):
    """Sends an IQ and returns (result, None) or (None, error), with a
    deadline beyond ngircd's slow answer to a wrong password."""
    q = s.xmpp.Iq()
    q["type"], q["to"] = itype, to
    if payload is not None:
        q.xml.append(mc.xml(payload))
    try:
        return (await q.send(timeout=timeout)).xml, None
    except IqError as e:
        return None, e.iq.xml
    except IqTimeout:
        raise xc.CheckFailed("no answer from %s to %s" % (to, tostring(q.xml)))


def error_text(el):
    t = el.find("{jabber:client}error/{%s}text" % mc.NS_STANZAS)
    return t.text if t is not None else ""


def registration(nick, password):
    q = ET.Element("{%s}query" % NS_REGISTER)
    q.append(mc.form("submit", [("nick", nick), ("password", password)], form_type=NS_REGISTER))
    return q


async def gateway_item(s, gateway):
    """The gateway's roster item, None if there is none."""
    res, err = await iq(s, None, "get", "<query xmlns='%s'/>" % NS_ROSTER, timeout=10)
    xc.check(err is None, "roster get refused: %s" % (tostring(err) if err is not None else ""))
    for it in res.findall("{%s}query/{%s}item" % (NS_ROSTER, NS_ROSTER)):
        if it.get("jid") == gateway:
            return dict(it.attrib)
    return None


async def roster_wait(s, gateway, ok, what, timeout=10):
    """Reads the roster until the gateway's item satisfies ok."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        item = await gateway_item(s, gateway)
        if ok(item):
            return item
        xc.check(loop.time() < deadline, "the gateway's roster item is still %s, want %s" % (item, what))
        await asyncio.sleep(0.2)


async def main(args):
    gw = args.gateway
    nick = args.nick
    contact = "%s@%s" % (args.irc_nick, gw)
    irc = await ic.IRC.connect(args.irc_host, args.irc_port, args.irc_nick, args.irc_password)
    s = await mc.Session(args, args.jid, args.password, label=args.jid.split("@", 1)[0]).start()

    # Discovery.
    res, err = await iq(s, gw, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_INFO)
    xc.check(err is None, "disco#info refused: %s" % (tostring(err) if err is not None else ""))
    ids = [(i.get("category"), i.get("type")) for i in res.iter("{%s}identity" % mc.NS_DISCO_INFO)]
    feats = [f.get("var") for f in res.iter("{%s}feature" % mc.NS_DISCO_INFO)]
    xc.check(("gateway", "irc") in ids, "identities %s lack gateway/irc" % ids)
    xc.check(NS_REGISTER in feats, "features %s lack %s" % (feats, NS_REGISTER))
    print("disco#info: %s, %s" % (ids, feats), flush=True)

    # The registration form.
    res, err = await iq(s, gw, "get", "<query xmlns='%s'/>" % NS_REGISTER)
    xc.check(err is None, "registration form refused: %s" % (tostring(err) if err is not None else ""))
    query = res.find("{%s}query" % NS_REGISTER)
    xc.check(query.find("{%s}registered" % NS_REGISTER) is None, "registered already: %s" % tostring(res))
    x = query.find("{%s}x" % mc.NS_DATA)
    xc.check(x is not None, "no data form in %s" % tostring(res))
    values, types = mc.read_form(x)
    xc.check(values.get("FORM_TYPE") == [NS_REGISTER], "FORM_TYPE %s" % values.get("FORM_TYPE"))
    for var, typ in (("nick", "text-single"), ("password", "text-private"), ("nickserv", "text-private")):
        xc.check(types.get(var) == typ, "form field %s of type %r, want %s: %s" % (var, types.get(var), typ, types))
    print("registration form: %s" % types, flush=True)

    # Before registering, the channels are closed to the user.
    await s.join_refused("#test@%s" % gw, "alice", "registration-required")

    # A wrong server password, then the right one.
    _, err = await iq(s, gw, "set", registration(nick, "not-" + args.irc_password))
    xc.check(err is not None, "registration with a wrong server password accepted")
    cond, text = mc.error_condition(err), error_text(err)
    xc.check(cond == "not-authorized" and "password" in text,
             "a wrong server password refused with %s %r, want not-authorized saying why: %s" % (cond, text, tostring(err)))
    print("wrong password: %s (%s)" % (cond, text), flush=True)
    mx = s.mark()
    res, err = await iq(s, gw, "set", registration(nick, args.irc_password))
    xc.check(err is None, "registration refused: %s" % (tostring(err) if err is not None else ""))
    print("registered as %s" % nick, flush=True)
    await s.wait(lambda r: r.kind == "presence" and r.frm == gw and r.type == "subscribe",
                 "the gateway's subscription request", since=mx)

    # slixmpp approves the subscription and subscribes back: the server
    # sends the user's presence to the gateway.
    await irc.ison(nick, True)
    print("%s is on IRC" % nick, flush=True)
    item = await roster_wait(s, gw, lambda it: it is not None and it.get("subscription") == "both", "subscription both")

    # One to one, both ways.
    mx = s.mark()
    irc.send("PRIVMSG %s :hello over the transport" % nick)
    r = await s.wait(lambda r: r.kind == "message" and mc.body(r) == "hello over the transport", "the IRC user's message", since=mx)
    xc.check(r.bare_from == contact and r.type == "chat", "message from %r of type %r, want %s, chat" % (r.frm, r.type, contact))
    m = irc.mark()
    s.message(contact, "chat", "hello back")
    await irc.wait(ic.privmsg(nick, args.irc_nick, "hello back"), "the XMPP user's message", since=m)
    print("one to one both ways with %s" % contact, flush=True)

    # The connection lasts while the user is online.
    s.presence(gw, "unavailable")
    await irc.ison(nick, False)
    print("%s left IRC when the user went offline" % nick, flush=True)
    s.xmpp.send_presence()
    await irc.ison(nick, True)
    print("%s is back on IRC with the user" % nick, flush=True)
    mx = s.mark()
    irc.send("PRIVMSG %s :welcome back" % nick)
    await s.wait(lambda r: r.kind == "message" and mc.body(r) == "welcome back" and r.bare_from == contact,
                 "the IRC user's message after the user came back", since=mx)

    # The form shows the registration, without the passwords.
    res, err = await iq(s, gw, "get", "<query xmlns='%s'/>" % NS_REGISTER)
    xc.check(err is None, "registration form refused: %s" % (tostring(err) if err is not None else ""))
    query = res.find("{%s}query" % NS_REGISTER)
    values, _ = mc.read_form(query.find("{%s}x" % mc.NS_DATA))
    xc.check(query.find("{%s}registered" % NS_REGISTER) is not None and values.get("nick") == [nick],
             "the form after registering: %s" % tostring(res))
    xc.check(not values.get("password"), "the form shows the server password: %s" % tostring(res))

    # Unregistering ends the IRC connection and the subscriptions.
    res, err = await iq(s, gw, "set", "<query xmlns='%s'><remove/></query>" % NS_REGISTER)
    xc.check(err is None, "unregistering refused: %s" % (tostring(err) if err is not None else ""))
    await irc.ison(nick, False)
    print("%s left IRC" % nick, flush=True)
    item = await roster_wait(s, gw, lambda it: it is None or it.get("subscription") == "none", "no subscription")
    print("the gateway's roster item after unregistering: %s" % item, flush=True)
    mx = s.mark()
    s.message(contact, "chat", "still there?")
    r = await s.wait(lambda r: r.kind == "message" and r.type == "error" and r.bare_from == contact,
                     "the error for a message after unregistering", since=mx)
    cond = mc.error_condition(r.xml)
    xc.check(cond == "registration-required", "a message after unregistering refused with %s, want registration-required: %r" % (cond, r))
    print("a message after unregistering: %s" % cond, flush=True)

    await irc.close()
    await s.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--gateway", required=True, help="the bridge's domain")
    p.add_argument("--nick", required=True, help="the nick to register")
    p.add_argument("--irc-host", default="127.0.0.1")
    p.add_argument("--irc-port", type=int, required=True)
    p.add_argument("--irc-password", required=True, help="the IRC server's password")
    p.add_argument("--irc-nick", required=True, help="the IRC user's nick")
    xc.run(main, p.parse_args())
