"""Roster round trip for one user: set an item, see the push, read it back
with a roster get, remove it, see the removal push and the empty result."""

import asyncio
import xml.etree.ElementTree as ET

import xmpp_common as xc

NS = "jabber:iq:roster"


def roster_query(items=None):
    q = ET.Element("{%s}query" % NS)
    for attrs, groups in items or []:
        item = ET.SubElement(q, "{%s}item" % NS, attrs)
        for g in groups:
            ET.SubElement(item, "{%s}group" % NS).text = g
    return q


async def roster_get(x):
    iq = x.make_iq_get(queryxmlns=NS)
    res = await iq.send(timeout=10)
    return res["roster"]["items"]


async def main(args):
    c = xc.Client(args, args.jid, args.password)
    x = c.xmpp
    pushes = asyncio.Queue()

    def on_roster(iq):
        if iq["type"] == "set":
            pushes.put_nowait(iq)

    # slixmpp answers pushes itself (after checking 'from'); we only watch them.
    x.add_event_handler("roster_update", on_roster)
    await c.start(presence=False)

    # RFC 6121 sends pushes only to resources that have requested the roster.
    before = await roster_get(x)
    print("initial roster: %s" % dict(before), flush=True)
    xc.check(args.contact not in before, "%s already in the roster" % args.contact)

    await x.make_iq_set(roster_query([({"jid": args.contact, "name": "Carol"}, ["Friends"])])).send(timeout=10)
    push = await asyncio.wait_for(pushes.get(), timeout=10)
    items = push["roster"]["items"]
    print("push after set: %s" % push, flush=True)
    xc.check(args.contact in items, "push does not carry %s: %s" % (args.contact, push))
    xc.check(items[args.contact]["name"] == "Carol", "pushed name %r, want Carol" % items[args.contact]["name"])
    xc.check(list(items[args.contact]["groups"]) == ["Friends"],
             "pushed groups %r, want ['Friends']" % items[args.contact]["groups"])

    got = await roster_get(x)
    xc.check(args.contact in got, "roster get lacks %s: %s" % (args.contact, dict(got)))
    item = got[args.contact]
    xc.check(item["name"] == "Carol", "name %r, want Carol" % item["name"])
    xc.check(list(item["groups"]) == ["Friends"], "groups %r, want ['Friends']" % item["groups"])
    xc.check(item["subscription"] in ("none", ""), "subscription %r, want none" % item["subscription"])
    print("roster get returned the item", flush=True)

    await x.make_iq_set(roster_query([({"jid": args.contact, "subscription": "remove"}, [])])).send(timeout=10)
    push = await asyncio.wait_for(pushes.get(), timeout=10)
    items = push["roster"]["items"]
    print("push after remove: %s" % push, flush=True)
    xc.check(args.contact in items and items[args.contact]["subscription"] == "remove",
             "removal push lacks subscription='remove' for %s: %s" % (args.contact, push))

    got = await roster_get(x)
    xc.check(args.contact not in got, "%s still in the roster after removal: %s" % (args.contact, dict(got)))
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--contact", default="carol@localhost")
    args = p.parse_args()
    xc.run(main, args)
