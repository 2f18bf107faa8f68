"""Bookmarks 2 (XEP-0402) on PEP: with --phase publish alice publishes a
bookmark with the publish-options the XEP asks for; with --phase fetch she
reads it back (after a server restart)."""

from slixmpp import ET
from slixmpp.plugins.xep_0004 import Form

import im_common as im
import xmpp_common as xc

NODE = "urn:xmpp:bookmarks:1"
ROOM = "lounge@conference.localhost"


def options():
    f = Form()
    f["type"] = "submit"
    f.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    f.add_field(var="pubsub#persist_items", value="true")
    f.add_field(var="pubsub#max_items", value="max")
    f.add_field(var="pubsub#send_last_published_item", value="never")
    f.add_field(var="pubsub#access_model", value="whitelist")
    return f


async def main(args):
    pw = im.passwords(args)
    alice_jid = args.user[0][0]
    alice = await im.Session(args, alice_jid, pw[alice_jid], plugins=["xep_0060"]).start(roster=False)
    ps = alice.xmpp["xep_0060"]
    if args.phase == "publish":
        conf = ET.fromstring("<conference xmlns='%s' name='The Lounge' autojoin='true'><nick>Alice</nick></conference>" % NODE)
        await ps.publish(alice_jid, NODE, id=ROOM, payload=conf, options=options(), timeout=10)
        # Again with the same options: they match the node now.
        await ps.publish(alice_jid, NODE, id=ROOM, payload=conf, options=options(), timeout=10)
        print("alice published her bookmark twice", flush=True)
    else:
        res = await ps.get_items(alice_jid, NODE, timeout=10)
        items = list(res["pubsub"]["items"])
        xc.check(len(items) == 1 and items[0]["id"] == ROOM, "bookmarks read back: %s" % res)
        conf = items[0].xml.find("{%s}conference" % NODE)
        xc.check(conf is not None and conf.get("name") == "The Lounge", "bookmark payload: %s" % res)
        print("alice read back her bookmark %s" % ROOM, flush=True)
    await alice.close()


if __name__ == "__main__":
    p = im.base_parser(__doc__)
    p.add_argument("--phase", choices=["publish", "fetch"], required=True)
    im.run(main, p.parse_args())
