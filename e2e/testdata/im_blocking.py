"""Blocking Command (XEP-0191): once alice blocks bob his messages to her
bounce with an error and never reach her, her own to him are refused, and
her blocklist names him; unblocking restores delivery."""

import asyncio

import im_common as im
import xmpp_common as xc

NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"


async def blocklist(s):
    iq = await s.xmpp["xep_0191"].get_blocked(timeout=10)
    return sorted(str(j) for j in iq["blocklist"]["items"])


async def main(args):
    xc.check(len(args.user) >= 2, "want --user for alice and bob")
    pw = im.passwords(args)
    alice_jid, bob_jid = args.user[0][0], args.user[1][0]
    alice = await im.Session(args, alice_jid, pw[alice_jid], plugins=["xep_0191"]).start(roster=False)
    bob = await im.Session(args, bob_jid, pw[bob_jid]).start(roster=False)

    got = await blocklist(alice)
    xc.check(got == [], "alice's blocklist at first: %s" % got)

    # Before blocking, delivery works.
    bob.xmpp.send_message(mto=alice_jid, mbody="before the block", mtype="chat")
    await alice.messages.wait_for(lambda m: m["body"] == "before the block", "bob's first message")

    pushes = im.Log("alice's block pushes")
    alice.xmpp.add_event_handler("blocked", pushes.add)
    await alice.xmpp["xep_0191"].block([bob_jid], timeout=10)
    push = await pushes.wait_for(lambda iq: True, "block push")
    pushed = sorted(str(j) for j in push["block"]["items"])
    xc.check(pushed == [bob_jid], "block push names %s, want [%s]" % (pushed, bob_jid))
    got = await blocklist(alice)
    xc.check(got == [bob_jid], "alice's blocklist after blocking: %s, want [%s]" % (got, bob_jid))
    print("alice blocked bob; blocklist %s" % got, flush=True)

    # bob -> alice bounces (XEP-0191 §3.3: service-unavailable).
    msg = bob.xmpp.make_message(mto=alice_jid, mbody="while blocked", mtype="chat")
    msg["id"] = "blocked-1"
    msg.send()
    err = await bob.messages.wait_for(lambda m: m["type"] == "error" and m["id"] == "blocked-1", "error for the blocked message")
    xc.check(err["error"]["condition"] == "service-unavailable",
             "bob's message bounced with %r, want service-unavailable: %s" % (err["error"]["condition"], err))
    print("bob's message bounced: %s" % err, flush=True)

    # alice -> bob is refused with not-acceptable and <blocked/> (§3.4).
    msg = alice.xmpp.make_message(mto=bob_jid, mbody="to someone I block", mtype="chat")
    msg["id"] = "blocked-2"
    msg.send()
    err = await alice.messages.wait_for(lambda m: m["type"] == "error" and m["id"] == "blocked-2", "error for a message to a blocked contact")
    xc.check(err["error"]["condition"] == "not-acceptable",
             "alice's message refused with %r, want not-acceptable: %s" % (err["error"]["condition"], err))
    xc.check(err.xml.find(".//{%s}blocked" % NS_BLOCKING_ERRORS) is not None,
             "the error lacks <blocked xmlns='%s'/>: %s" % (NS_BLOCKING_ERRORS, err))
    print("alice's message to bob was refused: %s" % err, flush=True)

    unpushes = im.Log("alice's unblock pushes")
    alice.xmpp.add_event_handler("unblocked", unpushes.add)
    await alice.xmpp["xep_0191"].unblock([bob_jid], timeout=10)
    await unpushes.wait_for(lambda iq: True, "unblock push")
    got = await blocklist(alice)
    xc.check(got == [], "alice's blocklist after unblocking: %s" % got)

    bob.xmpp.send_message(mto=alice_jid, mbody="after the block", mtype="chat")
    await alice.messages.wait_for(lambda m: m["body"] == "after the block", "bob's message after unblocking")
    # Messages from bob arrive in order: the blocked one would be here by now.
    bad = [m for m in alice.messages.items if m["body"] == "while blocked"]
    xc.check(not bad, "alice received bob's message while he was blocked: %s" % bad)
    xc.check([m["body"] for m in bob.messages.items if m["type"] != "error"] == [],
             "bob received messages: %s" % bob.messages.items)
    alice.xmpp.send_message(mto=bob_jid, mbody="we talk again", mtype="chat")
    await bob.messages.wait_for(lambda m: m["body"] == "we talk again", "alice's message after unblocking")
    print("delivery works both ways after unblocking", flush=True)

    await bob.close()
    await alice.close()


if __name__ == "__main__":
    p = im.base_parser(__doc__)
    args = p.parse_args()
    im.run(main, args)
