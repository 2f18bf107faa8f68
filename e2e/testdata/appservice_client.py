"""A user of the example directory service (examples/appservice): adds
dir-alice to the roster (the service approves and asks back), sees her
status, asks her in text and in XEP-0335 JSON, makes her away and back,
has a message refused by the service's hook, and sees the roster push of
an item the test sets through the HTTP API. Prints ROSTER-READY when it
waits for that push."""

import asyncio
import json

import im_common as im
import xmpp_common as xc

NS_JSON = "urn:xmpp:json:0"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def after(log, n, pred):
    """A predicate for an item of log received after its first n."""
    return lambda item: any(i is item for i in log.items[n:]) and pred(item)


def from_contact(contact):
    return lambda st: st["from"].bare == contact


async def main(args):
    me = await im.Session(args, args.jid, args.password, plugins=("xep_0335",)).start()
    x = me.xmpp
    contact = args.contact

    # The roster: the service approves the request and subscribes back.
    me.presence_to(contact, "subscribe")
    await me.presences.wait_for(im.from_bare(contact, "subscribed"), "subscribed from %s" % contact)
    await me.pushes.wait_for(lambda p: p.jid == contact and p.subscription == "to", "push with subscription to")
    p = await me.presences.wait_for(
        lambda p: p["from"].bare == contact and p["type"] == "available", "%s's available presence" % contact)
    xc.check(p["from"].resource == "directory", "presence from resource %r, want directory" % p["from"].resource)
    xc.check(p["status"] == args.status, "status %r, want %r" % (p["status"], args.status))
    print("%s approved, presence from %s with status %r" % (contact, p["from"], p["status"]), flush=True)
    await me.presences.wait_for(im.from_bare(contact, "subscribe"), "subscribe from %s" % contact)
    me.presence_to(contact, "subscribed")
    await me.pushes.wait_for(lambda p: p.jid == contact and p.subscription == "both", "push with subscription both")
    print("subscribed both ways", flush=True)

    # Text, both ways.
    x.send_message(mto=contact, mbody="who is bob?", mtype="chat")
    m = await me.messages.wait_for(lambda m: from_contact(contact)(m) and "Bob" in m["body"], "an answer about bob")
    xc.check(m["body"] == args.bob_line, "answer %r, want %r" % (m["body"], args.bob_line))
    print("text answer: %s" % m["body"], flush=True)

    # An XEP-0335 request; the answer comes in a container too.
    req = x.make_message(mto=contact, mtype="chat")
    req["json"]["value"] = {"op": "lookup", "name": "carol"}
    req.send()
    m = await me.messages.wait_for(
        lambda m: from_contact(contact)(m) and m.xml.find("{%s}json" % NS_JSON) is not None, "a JSON answer")
    got = json.loads(m.xml.find("{%s}json" % NS_JSON).text)
    want = json.loads(args.carol_json)
    xc.check(got == want, "JSON answer %s, want %s" % (got, want))
    print("JSON answer: %s" % json.dumps(got, sort_keys=True), flush=True)

    # The service changes her presence on request.
    n = len(me.presences.items)
    x.send_message(mto=contact, mbody="away", mtype="chat")
    p = await me.presences.wait_for(
        after(me.presences, n, lambda p: p["from"].bare == contact and p["show"] == "away"), "away presence")
    xc.check(p["status"] == "Away (asked by %s)" % args.jid, "away status %r" % p["status"])
    print("%s is away: %r" % (contact, p["status"]), flush=True)
    n = len(me.presences.items)
    x.send_message(mto=contact, mbody="back", mtype="chat")
    p = await me.presences.wait_for(
        after(me.presences, n, lambda p: p["from"].bare == contact and p["type"] == "available" and p["show"] == ""),
        "back presence")
    xc.check(p["status"] == args.status, "status back %r" % p["status"])
    print("%s is back" % contact, flush=True)

    # The hook refuses a message with the forbidden word.
    bad = x.make_message(mto=contact, mbody="I won the %s!" % args.forbidden, mtype="chat")
    bad["id"] = "forbidden-1"
    bad.send()
    m = await me.messages.wait_for(lambda m: m["id"] == "forbidden-1" and m["type"] == "error", "the refusal")
    # Parsed by hand: slixmpp 1.8 does not know policy-violation.
    err = m.xml.find("{jabber:client}error")
    xc.check(err is not None, "no error element: %s" % m)
    cond = next((c.tag.split("}")[1] for c in err if c.tag.startswith("{%s}" % NS_STANZAS) and not c.tag.endswith("}text")), "")
    text = err.findtext("{%s}text" % NS_STANZAS) or ""
    xc.check(cond == "policy-violation", "condition %r, want policy-violation: %s" % (cond, m))
    xc.check(args.forbidden in text, "error text %r does not name %r" % (text, args.forbidden))
    print("refused: condition=%s text=%r" % (cond, text), flush=True)

    # The test edits the roster through the API: a push arrives.
    print("ROSTER-READY", flush=True)
    push = await me.pushes.wait_for(lambda p: p.jid == args.pushed, "a push of %s" % args.pushed, timeout=30)
    xc.check(push.subscription == "both", "pushed subscription %r" % push.subscription)
    roster = await me.get_roster()
    xc.check(roster.get(args.pushed) == ("both", ""), "roster after the push: %s" % roster)
    print("roster push: %s" % push, flush=True)
    await me.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__.splitlines()[0])
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--contact", required=True, help="the directory's user to talk to")
    p.add_argument("--status", required=True, help="the status the service gives its users")
    p.add_argument("--bob-line", required=True, help="the expected answer to 'who is bob?'")
    p.add_argument("--carol-json", required=True, help="the expected JSON answer about carol")
    p.add_argument("--forbidden", required=True, help="the word the hook refuses")
    p.add_argument("--pushed", required=True, help="the contact the test sets through the API")
    a = p.parse_args()
    im.run(main, a)
