"""Per-account storage: private XML (XEP-0049) keeps alice's bookmarks
across logins and away from bob; a vCard (XEP-0054) alice sets is what bob
reads; the server tells its time (XEP-0202)."""

import datetime as dt

from slixmpp.plugins.xep_0048.stanza import Bookmarks
from slixmpp.plugins.xep_0054.stanza import VCardTemp

import im_common as im
import xmpp_common as xc

PLUGINS = ["xep_0049", "xep_0054", "xep_0202"]
ROOM = "lounge@conference.localhost"


def conferences(bookmarks):
    return sorted((str(c["jid"]), c["name"], c["nick"], c["autojoin"]) for c in bookmarks["conferences"])


async def retrieve_bookmarks(s):
    iq = await s.xmpp["xep_0049"].retrieve("bookmarks", timeout=10)
    return conferences(iq["private"]["bookmarks"])


async def main(args):
    xc.check(len(args.user) >= 2, "want --user for alice and bob")
    pw = im.passwords(args)
    alice_jid, bob_jid = args.user[0][0], args.user[1][0]

    def session(jid):
        s = im.Session(args, jid, pw[jid], plugins=PLUGINS)
        s.xmpp["xep_0049"].register(Bookmarks)
        return s

    alice = await session(alice_jid).start(roster=False)

    # Private XML: nothing stored yet, then a round trip.
    got = await retrieve_bookmarks(alice)
    xc.check(got == [], "bookmarks before storing: %s" % got)
    b = Bookmarks()
    b.add_conference(ROOM, "Alice", name="The Lounge", autojoin=True)
    await alice.xmpp["xep_0049"].store(b, timeout=10)
    want = [(ROOM, "The Lounge", "Alice", True)]
    got = await retrieve_bookmarks(alice)
    xc.check(got == want, "bookmarks read back: %s, want %s" % (got, want))
    print("alice stored and read back her bookmarks: %s" % got, flush=True)

    # vCard: alice publishes hers.
    vc = VCardTemp()
    vc["FN"] = "Alice Liddell"
    vc["NICKNAME"] = "alice"
    await alice.xmpp["xep_0054"].publish_vcard(vc, timeout=10)
    print("alice published her vCard", flush=True)
    await alice.close()

    # A new login still has the bookmarks; bob's private storage is his own.
    alice = await session(alice_jid).start(roster=False)
    got = await retrieve_bookmarks(alice)
    xc.check(got == want, "bookmarks after logging in again: %s, want %s" % (got, want))
    own = await alice.xmpp["xep_0054"].get_vcard(alice_jid, local=False, timeout=10)
    xc.check(own["vcard_temp"]["FN"] == "Alice Liddell", "alice's own vCard: %s" % own)
    bob = await session(bob_jid).start(roster=False)
    got = await retrieve_bookmarks(bob)
    xc.check(got == [], "bob sees bookmarks that are not his: %s" % got)
    print("the bookmarks survived a new login and stay alice's", flush=True)

    # bob reads alice's vCard; his own is still empty.
    iq = await bob.xmpp["xep_0054"].get_vcard(alice_jid, local=False, timeout=10)
    card = iq["vcard_temp"]
    xc.check(iq["from"].bare == alice_jid, "vCard answer from %s, want %s" % (iq["from"], alice_jid))
    # slixmpp reads NICKNAME as a list of nicknames.
    xc.check(card["FN"] == "Alice Liddell" and list(card["NICKNAME"]) == ["alice"],
             "bob read FN=%r NICKNAME=%r: %s" % (card["FN"], card["NICKNAME"], iq))
    print("bob read alice's vCard: FN=%s" % card["FN"], flush=True)
    iq = await bob.xmpp["xep_0054"].get_vcard(bob_jid, local=False, timeout=10)
    xc.check(iq["vcard_temp"]["FN"] == "", "bob's vCard, never set, has FN %r" % iq["vcard_temp"]["FN"])

    # Entity time from the server. slixmpp 1.8.3 cannot parse a <utc/> that
    # ends in Z (it appends another), so the text is read as it came.
    iq = await bob.xmpp["xep_0202"].get_entity_time(bob.jid.domain, timeout=10)
    el = iq["entity_time"]
    utc = el._get_sub_text("utc")
    tzo = el._get_sub_text("tzo")
    xc.check(utc != "" and tzo != "", "entity time lacks utc or tzo: %s" % iq)
    xc.check(utc.endswith("Z"), "utc %r is not in UTC (XEP-0082)" % utc)
    stamp = dt.datetime.fromisoformat(utc)
    xc.check(stamp.tzinfo is not None, "utc %r has no zone" % utc)
    offset = dt.datetime.fromisoformat("2000-01-01T00:00:00" + tzo)
    xc.check(offset.tzinfo is not None, "tzo %r is not an offset" % tzo)
    # Server and client share a clock; an hour allows for any slowness.
    skew = abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds())
    xc.check(skew < 3600, "server time %s is %.0f s off the local clock" % (utc, skew))
    print("server time: utc=%s tzo=%s" % (utc, tzo), flush=True)

    await bob.close()
    await alice.close()


if __name__ == "__main__":
    p = im.base_parser(__doc__)
    args = p.parse_args()
    im.run(main, args)
